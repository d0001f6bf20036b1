//! Hash-time-locked contracts: claim with the secret, refund after the timeout.

use super::*;

const SECRET: [u8; HTLC_SECRET_SIZE] = [0x5e; HTLC_SECRET_SIZE];

fn recipient() -> SecretKey {
    key(10)
}

fn refunder() -> SecretKey {
    key(11)
}

fn htlc_spend(hash_kind: HashKind, timeout: Timeout) -> Spend {
    let params = HtlcParams {
        hash_kind,
        hash: hash_kind.hash(&SECRET),
        recipient_pkh: pkh(&recipient()),
        refund_pkh: pkh(&refunder()),
        timeout,
    };
    Spend::new(vec![htlc(&params).unwrap()])
}

/// Signs input 0 with `key` and builds the unlock with `unlock(sig, pk)`.
fn sign_htlc(s: &mut Spend, key: &SecretKey, unlock: impl FnOnce(&[u8], &PublicKey) -> Script) {
    let sig = s.sign(0, SighashType::Default, key);
    let script = unlock(&sig, &key.public_key());
    s.unlock(0, script);
}

/// A claim unlock with an arbitrary secret, which [`htlc_claim_unlock`] would not allow.
fn claim_with(secret: Vec<u8>) -> impl FnOnce(&[u8], &PublicKey) -> Script {
    move |sig, pk| {
        ScriptBuilder::new()
            .push_slice(sig)
            .push_slice(pk.as_bytes())
            .push_slice(&secret)
            .push_int(1)
            .into_script()
    }
}

#[test]
fn htlc_claim_with_the_secret() {
    for kind in [HashKind::Blake3, HashKind::Sha256] {
        let mut s = htlc_spend(kind, Timeout::Absolute(1000));
        sign_htlc(&mut s, &recipient(), |sig, pk| {
            htlc_claim_unlock(sig, pk, &SECRET)
        });
        assert_eq!(s.verify(0), Ok(()), "{kind:?}");
        assert_eq!(classify(&s.spent[0].lock), ScriptKind::Htlc);
    }
}

#[test]
fn htlc_claim_rejects_wrong_secrets_and_keys() {
    for kind in [HashKind::Blake3, HashKind::Sha256] {
        let mut s = htlc_spend(kind, Timeout::RelativeBlocks(10));
        sign_htlc(&mut s, &recipient(), |sig, pk| {
            htlc_claim_unlock(sig, pk, &[0x5f; 32])
        });
        assert_eq!(s.verify(0), Err(ScriptError::EqualVerifyFailed));
        // Wrong sizes fail the size check, even if a 31- or 33-byte preimage hashed right.
        for len in [0, 31, 33] {
            sign_htlc(&mut s, &recipient(), claim_with(vec![0x5e; len]));
            assert_eq!(s.verify(0), Err(ScriptError::EqualVerifyFailed), "{len}");
        }
        // The refund key cannot use the claim path.
        sign_htlc(&mut s, &refunder(), |sig, pk| {
            htlc_claim_unlock(sig, pk, &SECRET)
        });
        assert_eq!(s.verify(0), Err(ScriptError::EqualVerifyFailed));
    }
}

#[test]
fn htlc_branch_selector_must_be_minimal() {
    let mut s = htlc_spend(HashKind::Blake3, Timeout::Absolute(1000));
    sign_htlc(&mut s, &recipient(), |sig, pk| {
        ScriptBuilder::new()
            .push_slice(sig)
            .push_slice(pk.as_bytes())
            .push_slice(&SECRET)
            .push_int(2)
            .into_script()
    });
    assert_eq!(s.verify(0), Err(ScriptError::NonMinimalIf));
}

/// An HTLC refund with the given transaction lock time and input sequence.
fn refund(timeout: Timeout, lock_time: u64, sequence: u32) -> Result<()> {
    let mut s = htlc_spend(HashKind::Sha256, timeout);
    s.tx.lock_time = lock_time;
    s.tx.inputs[0].sequence = sequence;
    sign_htlc(&mut s, &refunder(), htlc_refund_unlock);
    s.verify(0)
}

#[test]
fn htlc_refund_after_absolute_height() {
    let t = Timeout::Absolute(1000);
    let not_yet = Err(ScriptError::LockTimeNotSatisfied { required: 1000 });
    assert_eq!(refund(t, 999, 0), not_yet);
    assert_eq!(refund(t, 1000, 0), Ok(()));
    assert_eq!(refund(t, 5000, SEQUENCE_FINAL - 1), Ok(()));
    // A final sequence would disable the lock time: CLTV refuses it.
    assert_eq!(refund(t, 5000, SEQUENCE_FINAL), not_yet);
    // A time-based lock time does not satisfy a height-based timeout.
    assert_eq!(refund(t, 1_700_000_000, 0), not_yet);
}

#[test]
fn htlc_refund_after_absolute_time() {
    let t = Timeout::Absolute(1_700_000_000);
    let not_yet = Err(ScriptError::LockTimeNotSatisfied {
        required: 1_700_000_000,
    });
    assert_eq!(refund(t, 1_699_999_999, 0), not_yet);
    assert_eq!(refund(t, 1_700_000_000, 0), Ok(()));
    // A height never satisfies a time.
    assert_eq!(refund(t, 499_999_999, 0), not_yet);
}

#[test]
fn htlc_refund_after_relative_blocks() {
    let t = Timeout::RelativeBlocks(144);
    let not_yet = Err(ScriptError::SequenceNotSatisfied { required: 144 });
    assert_eq!(refund(t, 0, 143), not_yet);
    assert_eq!(refund(t, 0, 144), Ok(()));
    assert_eq!(refund(t, 0, 0xffff), Ok(()));
    // Only the low 16 bits count, and the disable flag turns the lock off.
    assert_eq!(refund(t, 0, 0x0001_0000), not_yet);
    assert_eq!(refund(t, 0, SEQUENCE_LOCKTIME_DISABLE_FLAG | 200), not_yet);
    assert_eq!(refund(t, 0, SEQUENCE_FINAL), not_yet);
}

#[test]
fn htlc_refund_key_is_checked() {
    let mut s = htlc_spend(HashKind::Blake3, Timeout::RelativeBlocks(1));
    s.tx.inputs[0].sequence = 1;
    sign_htlc(&mut s, &recipient(), htlc_refund_unlock);
    assert_eq!(s.verify(0), Err(ScriptError::EqualVerifyFailed));
}
