//! The language itself: limits, malformed scripts, each opcode, and the checkers.

use super::*;

#[test]
fn lock_time_opcodes_validate_their_argument() {
    let lock = |arg: &[u8], code: u8| {
        let mut l = ScriptBuilder::new()
            .push_slice(arg)
            .into_script()
            .into_bytes();
        l.push(code);
        l
    };
    let mut s = Spend::raw(vec![], lock(&[0x81], op::OP_CHECKLOCKTIMEVERIFY));
    s.tx.inputs[0].sequence = 0;
    assert_eq!(s.verify(0), Err(ScriptError::NegativeLockTime));
    // Six bytes are too many even for lock times; five are fine.
    let mut s = Spend::raw(
        vec![],
        lock(&[1, 0, 0, 0, 0, 1], op::OP_CHECKLOCKTIMEVERIFY),
    );
    s.tx.inputs[0].sequence = 0;
    assert_eq!(s.verify(0), Err(ScriptError::InvalidNumber { max_len: 5 }));
    let mut s = Spend::raw(vec![], lock(&[0, 0, 0, 0, 1], op::OP_CHECKLOCKTIMEVERIFY));
    s.tx.inputs[0].sequence = 0;
    s.tx.lock_time = 1 << 32;
    assert_eq!(s.verify(0), Ok(()));
    for (arg, value) in [(&[0x81][..], -1), (&[0, 0, 1][..], 0x10000)] {
        let mut s = Spend::raw(vec![], lock(arg, op::OP_CHECKSEQUENCEVERIFY));
        s.tx.inputs[0].sequence = 0xffff;
        assert_eq!(s.verify(0), Err(ScriptError::SequenceArgOutOfRange(value)));
    }
}

#[test]
fn trivial_scripts() {
    assert_eq!(run(vec![], vec![op::OP_1]), Ok(()));
    assert_eq!(run(vec![op::OP_1], vec![]), Ok(()));
    assert_eq!(run(vec![], vec![]), Err(ScriptError::EvalFalse));
    assert_eq!(run(vec![], vec![op::OP_0]), Err(ScriptError::EvalFalse));
    assert_eq!(
        run(vec![op::OP_1, op::OP_1], vec![op::OP_1]),
        Err(ScriptError::CleanStack(3))
    );
    assert_eq!(
        run(vec![op::OP_1, op::OP_0], vec![]),
        Err(ScriptError::EvalFalse)
    );
}

#[test]
fn oversize_scripts_fail() {
    let big_lock = [vec![op::OP_1], vec![op::OP_0; MAX_SCRIPT_SIZE]].concat();
    assert_eq!(
        run(vec![], big_lock),
        Err(ScriptError::ScriptTooLarge {
            size: MAX_SCRIPT_SIZE + 1,
            max: MAX_SCRIPT_SIZE
        })
    );
    let big_unlock = vec![op::OP_0; MAX_SCRIPT_SIZE + 1];
    assert!(matches!(
        run(big_unlock, vec![op::OP_1]),
        Err(ScriptError::ScriptTooLarge { .. })
    ));
}

#[test]
fn opcode_limit() {
    // `n` ops: DUP/DROP pairs and a final VERIFY, on two true elements.
    let lock = |n: usize| {
        let mut l: Vec<u8> = [op::OP_DUP, op::OP_DROP].repeat((n - 1) / 2);
        l.push(op::OP_VERIFY);
        l
    };
    assert_eq!(
        run(vec![op::OP_1, op::OP_1], lock(MAX_OPS_PER_SCRIPT)),
        Ok(())
    );
    assert_eq!(
        run(vec![op::OP_1, op::OP_1], lock(MAX_OPS_PER_SCRIPT + 2)),
        Err(ScriptError::TooManyOps)
    );
    // Ops in a branch that does not run count too; pushes and OP_1..OP_16 do not.
    let mut l = vec![op::OP_0, op::OP_IF];
    l.extend_from_slice(&[op::OP_DUP; MAX_OPS_PER_SCRIPT]);
    l.extend_from_slice(&[op::OP_ENDIF, op::OP_16]);
    assert_eq!(run(vec![], l), Err(ScriptError::TooManyOps));
    let pushes = [op::OP_16; 1000].to_vec();
    assert_eq!(
        run(vec![], [pushes, vec![op::OP_VERIFY; 999]].concat()),
        Err(ScriptError::TooManyOps)
    );
}

#[test]
fn stack_limit() {
    let full = vec![op::OP_1; MAX_STACK_SIZE];
    assert_eq!(
        run(full.clone(), vec![op::OP_DUP]),
        Err(ScriptError::StackOverflow)
    );
    assert_eq!(
        run(vec![op::OP_1; MAX_STACK_SIZE + 1], vec![]),
        Err(ScriptError::StackOverflow)
    );
    // Exactly at the limit is fine (and then fails only the clean-stack rule).
    assert_eq!(
        run(full, vec![]),
        Err(ScriptError::CleanStack(MAX_STACK_SIZE))
    );
}

#[test]
fn push_rules() {
    // Non-minimal in the unlock and in the lock.
    assert_eq!(
        run(vec![1, 5], vec![]),
        Err(ScriptError::NonMinimalPush { size: 1 })
    );
    let mut l = vec![op::OP_PUSHDATA1, 20];
    l.extend_from_slice(&[9; 20]);
    assert_eq!(
        run(vec![], l),
        Err(ScriptError::NonMinimalPush { size: 20 })
    );
    // Too large, even in a branch that does not run.
    let mut l = vec![op::OP_0, op::OP_IF, op::OP_PUSHDATA2, 0x09, 0x02];
    l.extend_from_slice(&[9; 521]);
    l.extend_from_slice(&[op::OP_ENDIF, op::OP_1]);
    assert_eq!(
        run(vec![], l),
        Err(ScriptError::PushTooLarge {
            size: 521,
            max: 520
        })
    );
    assert_eq!(
        run(vec![], vec![op::OP_1, 2, 1]),
        Err(ScriptError::TruncatedPush)
    );
}

#[test]
fn conditionals() {
    let if_else = |selector: u8| {
        run(
            vec![selector],
            vec![op::OP_IF, op::OP_1, op::OP_ELSE, op::OP_0, op::OP_ENDIF],
        )
    };
    assert_eq!(if_else(op::OP_1), Ok(()));
    assert_eq!(if_else(op::OP_0), Err(ScriptError::EvalFalse));
    assert_eq!(if_else(op_n(2)), Err(ScriptError::NonMinimalIf));
    let notif = run(vec![op::OP_0], vec![op::OP_NOTIF, op::OP_1, op::OP_ENDIF]);
    assert_eq!(notif, Ok(()));
    // Nested, with the outer branch false: the inner ELSE must not switch execution on.
    let nested = vec![
        op::OP_0,
        op::OP_IF,
        op::OP_1,
        op::OP_IF,
        op::OP_RETURN,
        op::OP_ELSE,
        op::OP_RETURN,
        op::OP_ENDIF,
        op::OP_ELSE,
        op::OP_1,
        op::OP_ENDIF,
    ];
    assert_eq!(run(vec![], nested), Ok(()));
    // Several ELSEs toggle, as in Bitcoin.
    let toggles = vec![
        op::OP_1,
        op::OP_IF,
        op::OP_ELSE,
        op::OP_RETURN,
        op::OP_ELSE,
        op::OP_1,
        op::OP_ENDIF,
    ];
    assert_eq!(run(vec![], toggles), Ok(()));
    for unbalanced in [
        vec![op::OP_1, op::OP_IF, op::OP_1],
        vec![op::OP_1, op::OP_ENDIF],
        vec![op::OP_1, op::OP_ELSE],
        vec![op::OP_1, op::OP_1, op::OP_IF, op::OP_ENDIF, op::OP_ENDIF],
    ] {
        assert_eq!(
            run(vec![], unbalanced),
            Err(ScriptError::UnbalancedConditional)
        );
    }
    assert_eq!(
        run(vec![], vec![op::OP_IF]),
        Err(ScriptError::StackUnderflow(op::OP_IF))
    );
}

#[test]
fn unknown_opcodes_fail_everywhere() {
    assert_eq!(
        run(vec![], vec![op::OP_1, 0xff]),
        Err(ScriptError::UnknownOpcode(0xff))
    );
    let hidden = vec![op::OP_0, op::OP_IF, 0x4e, op::OP_ENDIF, op::OP_1];
    assert_eq!(run(vec![], hidden), Err(ScriptError::UnknownOpcode(0x4e)));
}

#[test]
fn unlock_must_be_push_only() {
    assert_eq!(
        run(vec![op::OP_1, op::OP_DUP], vec![op::OP_DROP]),
        Err(ScriptError::UnlockNotPushOnly(op::OP_DUP))
    );
    assert_eq!(
        run(vec![op::OP_1, op::OP_IF, op::OP_1, op::OP_ENDIF], vec![]),
        Err(ScriptError::UnlockNotPushOnly(op::OP_IF))
    );
}

#[test]
fn data_carrier_is_unspendable() {
    let lock = Script::data_carrier(b"hello").unwrap();
    assert_eq!(
        run(vec![op::OP_1], lock.into_bytes()),
        Err(ScriptError::OpReturn)
    );
}

#[test]
fn stack_and_arithmetic_opcodes() {
    let ok = |unlock: &[u8], lock: &[u8]| run(unlock.to_vec(), lock.to_vec());
    // SWAP, SIZE, EQUAL, NUMEQUAL, NUMEQUALVERIFY, VERIFY, DROP.
    assert_eq!(
        ok(&[op::OP_0, op::OP_1], &[op::OP_SWAP, op::OP_DROP]),
        Ok(())
    );
    assert_eq!(
        ok(
            &[3, 1, 2, 3],
            &[op::OP_SIZE, op::OP_1 + 2, op::OP_EQUALVERIFY]
        ),
        Ok(())
    );
    assert_eq!(
        ok(&[2, 0x80, 0], &[1, 0x80, op::OP_EQUAL]),
        Err(ScriptError::EvalFalse)
    );
    // 128 == 128 numerically and bytewise.
    assert_eq!(ok(&[2, 0x80, 0], &[2, 0x80, 0, op::OP_NUMEQUAL]), Ok(()));
    assert_eq!(
        ok(&[op_n(5)], &[op_n(6), op::OP_NUMEQUALVERIFY, op::OP_1]),
        Err(ScriptError::NumEqualVerifyFailed)
    );
    // Non-minimal or oversize numbers are rejected.
    assert_eq!(
        ok(&[2, 5, 0], &[op_n(5), op::OP_NUMEQUAL]),
        Err(ScriptError::InvalidNumber { max_len: 4 })
    );
    assert_eq!(
        ok(&[5, 1, 0, 0, 0, 1], &[op_n(5), op::OP_NUMEQUAL]),
        Err(ScriptError::InvalidNumber { max_len: 4 })
    );
    assert_eq!(
        ok(&[op::OP_0], &[op::OP_VERIFY, op::OP_1]),
        Err(ScriptError::VerifyFailed)
    );
    assert_eq!(
        ok(&[], &[op::OP_SWAP]),
        Err(ScriptError::StackUnderflow(op::OP_SWAP))
    );
    assert_eq!(
        ok(&[op::OP_1], &[op::OP_SWAP]),
        Err(ScriptError::StackUnderflow(op::OP_SWAP))
    );
}

#[test]
fn hash_opcodes_match_their_definitions() {
    let data = b"abc";
    let check = |code: u8, digest: &[u8]| {
        let unlock = ScriptBuilder::new()
            .push_slice(data)
            .into_script()
            .into_bytes();
        let lock = ScriptBuilder::new()
            .push_opcode(code)
            .push_slice(digest)
            .push_opcode(op::OP_EQUAL)
            .into_script()
            .into_bytes();
        run(unlock, lock)
    };
    use sha2::Digest;
    assert_eq!(check(op::OP_SHA256, &sha2::Sha256::digest(data)), Ok(()));
    assert_eq!(check(op::OP_BLAKE3, blake3::hash(data).as_bytes()), Ok(()));
    let pk = PublicKey([7; 32]);
    let unlock = ScriptBuilder::new()
        .push_slice(&pk.0)
        .into_script()
        .into_bytes();
    let lock = ScriptBuilder::new()
        .push_opcode(op::OP_PUBKEYHASH)
        .push_slice(pubkey_hash(&pk).as_bytes())
        .push_opcode(op::OP_EQUAL)
        .into_script()
        .into_bytes();
    assert_eq!(run(unlock, lock), Ok(()));
}

#[test]
fn checksigadd_counts_and_checksigverify_requires() {
    let k = key(1);
    let pk = k.public_key();
    // `sig 5 pk CHECKSIGADD 6 NUMEQUAL` with a valid signature; `0 5 pk ... 5` without.
    let lock = |expect: i64| {
        ScriptBuilder::new()
            .push_int(5)
            .push_slice(&pk.0)
            .push_opcode(op::OP_CHECKSIGADD)
            .push_int(expect)
            .push_opcode(op::OP_NUMEQUAL)
            .into_script()
    };
    let mut s = Spend::new(vec![lock(6)]);
    let sig = s.sign(0, SighashType::Default, &k);
    s.unlock(0, ScriptBuilder::new().push_slice(&sig).into_script());
    assert_eq!(s.verify(0), Ok(()));
    let mut s = Spend::new(vec![lock(5)]);
    s.unlock(0, Script::new(vec![op::OP_0]));
    assert_eq!(s.verify(0), Ok(()));

    let verify_lock = ScriptBuilder::new()
        .push_slice(&pk.0)
        .push_opcode(op::OP_CHECKSIGVERIFY)
        .push_int(1)
        .into_script();
    let mut s = Spend::new(vec![verify_lock]);
    s.unlock(0, Script::new(vec![op::OP_0]));
    assert_eq!(s.verify(0), Err(ScriptError::CheckSigVerifyFailed));
    let sig = s.sign(0, SighashType::None, &k);
    s.unlock(0, ScriptBuilder::new().push_slice(&sig).into_script());
    assert_eq!(s.verify(0), Ok(()));
}

#[test]
fn deferred_checker_batches_a_block_worth_of_inputs() {
    // One transaction with many inputs, all deferred into one checker and verified
    // as a batch; then the same with one bad signature.
    let keys: Vec<_> = (1..=12).map(key).collect();
    let s = p2pkh_spend(&keys);
    let cache = SighashCache::new(&s.tx, &s.spent).unwrap();
    let mut deferred = DeferredChecker::with_capacity(keys.len());
    for i in 0..keys.len() {
        verify_input(&InputContext::new(&cache, i).unwrap(), &mut deferred).unwrap();
    }
    assert_eq!(deferred.len(), keys.len());
    assert!(deferred.verify(2).is_ok());

    let mut bad = s.clone();
    let wrong = bad.sign(3, SighashType::Default, &key(99));
    bad.unlock(3, p2pkh_unlock(&wrong, &keys[3].public_key()));
    let cache = SighashCache::new(&bad.tx, &bad.spent).unwrap();
    let mut deferred = DeferredChecker::new();
    for i in 0..keys.len() {
        verify_input(&InputContext::new(&cache, i).unwrap(), &mut deferred).unwrap();
    }
    assert!(deferred.verify(2).is_err());
    assert_eq!(bad.verify(3), Err(ScriptError::SignatureCheckFailed));
}

#[test]
fn input_context_checks_the_index() {
    let s = p2pkh_spend(&[key(1)]);
    let cache = SighashCache::new(&s.tx, &s.spent).unwrap();
    assert_eq!(
        InputContext::new(&cache, 1).unwrap_err(),
        ScriptError::InputIndexOutOfRange {
            index: 1,
            inputs: 1
        }
    );
}

#[test]
fn sigops_are_counted_statically() {
    assert_eq!(count_sigops(&Script::p2pkh(&Hash256::ZERO)), 1);
    let h = htlc(&HtlcParams {
        hash_kind: HashKind::Blake3,
        hash: [0; 32],
        recipient_pkh: Hash256::ZERO,
        refund_pkh: Hash256::ZERO,
        timeout: Timeout::RelativeBlocks(1),
    })
    .unwrap();
    assert_eq!(count_sigops(&h), 1);
    assert_eq!(
        count_sigops(&Script::new(vec![op::OP_CHECKSIG, 3, op::OP_CHECKSIG])),
        1
    );
}
