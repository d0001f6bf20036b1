//! P2PKH spends, signature encoding and what each sighash type commits to.

use super::*;

#[test]
fn p2pkh_spend_is_valid() {
    let s = p2pkh_spend(&[key(1), key(2), key(1)]);
    assert_eq!(s.verify_all(), Ok(()));
    assert_eq!(s.tx.inputs[0].unlock.len(), 1 + 64 + 1 + 32);
    assert_eq!(classify(&s.spent[0].lock), ScriptKind::P2pkh(pkh(&key(1))));
}

#[test]
fn p2pkh_wrong_key_fails() {
    let mut s = Spend::new(vec![Script::p2pkh(&pkh(&key(1)))]);
    // Someone else's key and signature: the key does not hash to the lock's hash.
    let sig = s.sign(0, SighashType::Default, &key(2));
    s.unlock(0, p2pkh_unlock(&sig, &key(2).public_key()));
    assert_eq!(s.verify(0), Err(ScriptError::EqualVerifyFailed));
    // The right public key with another key's signature.
    s.unlock(0, p2pkh_unlock(&sig, &key(1).public_key()));
    assert_eq!(s.verify(0), Err(ScriptError::SignatureCheckFailed));
}

#[test]
fn sign_p2pkh_reports_missing_and_wrong_keys() {
    let mut s = Spend::new(vec![Script::p2pkh(&pkh(&key(1)))]);
    let original = s.tx.clone();
    assert_eq!(
        sign_p2pkh(&mut s.tx, &s.spent, |_| None),
        Err(SignError::MissingKey {
            input: 0,
            pubkey_hash: pkh(&key(1))
        })
    );
    assert_eq!(
        sign_p2pkh(&mut s.tx, &s.spent, |_| Some(key(2))),
        Err(SignError::WrongKey {
            input: 0,
            pubkey_hash: pkh(&key(1))
        })
    );
    assert_eq!(s.tx, original);
    assert!(matches!(
        sign_p2pkh(&mut s.tx, &[], |_| Some(key(1))),
        Err(SignError::Sighash(ScriptError::SpentOutputsMismatch { .. }))
    ));
}

#[test]
fn tampering_after_signing_fails() {
    let signed = p2pkh_spend(&[key(1), key(2)]);
    let tampers: [fn(&mut Spend); 6] = [
        |s| s.tx.outputs[0].value = coins(7),
        |s| s.tx.outputs[1].lock = Script::p2pkh(&Hash256([0xee; 32])),
        |s| {
            s.tx.outputs.pop();
        },
        |s| s.tx.lock_time = 1,
        |s| s.tx.inputs[1].sequence = 0,
        // The spent amount is committed: a lying fee display would be caught.
        |s| s.spent[1].value = coins(1000),
    ];
    for tamper in tampers {
        let mut s = signed.clone();
        tamper(&mut s);
        assert_eq!(s.verify(0), Err(ScriptError::SignatureCheckFailed));
    }
}

#[test]
fn empty_signature_is_false() {
    let k = key(1);
    let mut s = Spend::new(vec![Script::p2pkh(&pkh(&k))]);
    s.unlock(0, p2pkh_unlock(&[], &k.public_key()));
    assert_eq!(s.verify(0), Err(ScriptError::EvalFalse));
}

#[test]
fn signature_encoding_is_strict() {
    let k = key(1);
    let mut s = Spend::new(vec![Script::p2pkh(&pkh(&k))]);
    let sig = s.sign(0, SighashType::Default, &k);
    let pk = k.public_key();
    for bad in [
        &sig[..63],
        &[sig.clone(), vec![0x00]].concat(),
        &[sig.clone(), vec![0x04]].concat(),
    ] {
        s.unlock(0, p2pkh_unlock(bad, &pk));
        assert_eq!(s.verify(0), Err(ScriptError::InvalidSignatureEncoding));
    }
    // Appending an explicit ALL byte to a default signature changes the sighash: the
    // wtxid cannot be malleated this way.
    s.unlock(0, p2pkh_unlock(&[sig.clone(), vec![0x01]].concat(), &pk));
    assert_eq!(s.verify(0), Err(ScriptError::SignatureCheckFailed));
    s.unlock(0, p2pkh_unlock(&sig, &pk));
    assert_eq!(s.verify(0), Ok(()));
}

#[test]
fn invalid_public_key_is_rejected() {
    // A lock that checks against a 31-byte key.
    let lock = ScriptBuilder::new()
        .push_slice(&[1; 31])
        .push_opcode(op::OP_CHECKSIG)
        .into_script();
    let s = Spend::raw(vec![op::OP_0], lock.into_bytes());
    assert_eq!(s.verify(0), Err(ScriptError::InvalidPublicKey(31)));
}

// ---------------------------------------------------------------------------------
// Sighash types, end to end

fn signed_with(ty: SighashType) -> Spend {
    let (k0, k1) = (key(1), key(2));
    let mut s = Spend::new(vec![Script::p2pkh(&pkh(&k0)), Script::p2pkh(&pkh(&k1))]);
    let sig0 = s.sign(0, ty, &k0);
    let sig1 = s.sign(1, SighashType::Default, &k1);
    s.unlock(0, p2pkh_unlock(&sig0, &k0.public_key()));
    s.unlock(1, p2pkh_unlock(&sig1, &k1.public_key()));
    assert_eq!(s.verify_all(), Ok(()));
    if ty != SighashType::Default {
        assert_eq!(s.tx.inputs[0].unlock.len(), 1 + 65 + 1 + 32);
    }
    s
}

/// Whether input 0, signed with `ty`, stays valid after `edit`.
fn survives(ty: SighashType, edit: fn(&mut Spend)) -> bool {
    let mut s = signed_with(ty);
    edit(&mut s);
    match s.verify(0) {
        Ok(()) => true,
        Err(ScriptError::SignatureCheckFailed) => false,
        Err(e) => panic!("unexpected {e}"),
    }
}

#[test]
fn each_sighash_type_commits_to_what_it_should() {
    use SighashType as T;
    let change_output_1: fn(&mut Spend) = |s| s.tx.outputs[1].value = coins(1);
    let change_output_0: fn(&mut Spend) = |s| s.tx.outputs[0].value = coins(1);
    let add_output: fn(&mut Spend) = |s| {
        let out = s.tx.outputs[0].clone();
        s.tx.outputs.push(out);
    };
    let change_input_1: fn(&mut Spend) = |s| s.tx.inputs[1].prevout.vout = 77;
    let add_input: fn(&mut Spend) = |s| {
        let (input, out) = (s.tx.inputs[1].clone(), s.spent[1].clone());
        s.tx.inputs.push(input);
        s.spent.push(out);
    };
    let expectations: [(T, [bool; 5]); 7] = [
        //                        out1   out0   +out   in1    +in
        (T::Default, [false, false, false, false, false]),
        (T::All, [false, false, false, false, false]),
        (T::None, [true, true, true, false, false]),
        (T::Single, [true, false, true, false, false]),
        (T::AllAnyoneCanPay, [false, false, false, true, true]),
        (T::NoneAnyoneCanPay, [true, true, true, true, true]),
        (T::SingleAnyoneCanPay, [true, false, true, true, true]),
    ];
    let edits = [
        change_output_1,
        change_output_0,
        add_output,
        change_input_1,
        add_input,
    ];
    for (ty, expected) in expectations {
        for (edit, expected) in edits.iter().zip(expected) {
            assert_eq!(survives(ty, *edit), expected, "{ty:?}");
        }
    }
}

#[test]
fn sighash_single_without_output_fails() {
    let k = key(1);
    let locks = vec![Script::p2pkh(&pkh(&k)); 3];
    let mut s = Spend::new(locks);
    let cache = SighashCache::new(&s.tx, &s.spent).unwrap();
    assert_eq!(
        sign_input(&cache, 2, SighashType::Single, &k),
        Err(ScriptError::SighashSingleNoOutput { index: 2 })
    );
    // A SINGLE signature made while the output existed fails once it is removed.
    let sig = sign_input(&cache, 1, SighashType::Single, &k).unwrap();
    s.unlock(1, p2pkh_unlock(&sig, &k.public_key()));
    assert_eq!(s.verify(1), Ok(()));
    s.tx.outputs.truncate(1);
    assert_eq!(
        s.verify(1),
        Err(ScriptError::SighashSingleNoOutput { index: 1 })
    );
}
