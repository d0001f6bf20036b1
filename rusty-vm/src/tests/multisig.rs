//! m-of-n multisig with CHECKSIGADD.

use super::*;

fn multisig_spend(m: usize, keys: &[SecretKey], signers: &[usize]) -> Spend {
    let pks: Vec<_> = keys.iter().map(SecretKey::public_key).collect();
    let s = Spend::new(vec![multisig(m, &pks).unwrap()]);
    let sigs: Vec<Vec<u8>> = (0..keys.len())
        .map(|i| {
            if signers.contains(&i) {
                s.sign(0, SighashType::Default, &keys[i])
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut s = s;
    s.unlock(0, multisig_unlock(&sigs));
    s
}

#[test]
fn multisig_two_of_three() {
    let keys = [key(1), key(2), key(3)];
    for pair in [[0, 1], [0, 2], [1, 2]] {
        assert_eq!(
            multisig_spend(2, &keys, &pair).verify(0),
            Ok(()),
            "{pair:?}"
        );
    }
    for single in 0..3 {
        assert_eq!(
            multisig_spend(2, &keys, &[single]).verify(0),
            Err(ScriptError::EvalFalse)
        );
    }
    // Three signatures for a 2-of-3 is not "at least two": NUMEQUAL wants exactly m.
    assert_eq!(
        multisig_spend(2, &keys, &[0, 1, 2]).verify(0),
        Err(ScriptError::EvalFalse)
    );
}

#[test]
fn multisig_wrong_signature_fails_the_script() {
    let keys = [key(1), key(2), key(3)];
    let mut s = multisig_spend(2, &keys, &[0, 1]);
    // Replace key 2's signature by one from an outsider: NULLFAIL, not "one fewer".
    let outsider = s.sign(0, SighashType::Default, &key(9));
    let first = s.sign(0, SighashType::Default, &keys[0]);
    s.unlock(0, multisig_unlock(&[first, outsider, Vec::new()]));
    assert_eq!(s.verify(0), Err(ScriptError::SignatureCheckFailed));
}

#[test]
fn multisig_one_of_one_and_twenty_of_twenty() {
    let keys: Vec<_> = (1..=20).map(key).collect();
    assert_eq!(multisig_spend(1, &keys[..1], &[0]).verify(0), Ok(()));
    let all: Vec<_> = (0..20).collect();
    let s = multisig_spend(20, &keys, &all);
    assert_eq!(s.verify(0), Ok(()));
    assert_eq!(count_sigops(&s.spent[0].lock), 20);
}

#[test]
fn multisig_with_too_few_unlock_items_underflows() {
    let keys = [key(1), key(2)];
    let mut s = multisig_spend(1, &keys, &[0]);
    let sig = s.sign(0, SighashType::Default, &keys[0]);
    s.unlock(0, multisig_unlock(&[sig]));
    assert_eq!(
        s.verify(0),
        Err(ScriptError::StackUnderflow(op::OP_CHECKSIGADD))
    );
}
