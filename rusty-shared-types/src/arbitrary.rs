//! proptest strategies for every type, and the codec round-trip properties.
//! Enabled in other crates' tests by the `proptest` feature.

use proptest::{collection::vec, prelude::*};

use crate::{
    masternode::{ProRegister, ProRevoke, ProUpdateRegistrar, ProUpdateService},
    Amount, BitSet, Block, BlockHeader, ChainLock, CoinbasePayload, Hash256, OutPoint, Payload,
    QuorumCommitment, Script, Transaction, TxIn, TxOut, MAX_MONEY,
};

pub fn hash() -> impl Strategy<Value = Hash256> {
    any::<[u8; 32]>().prop_map(Hash256)
}

pub fn amount() -> impl Strategy<Value = Amount> {
    (0..=MAX_MONEY).prop_map(|u| Amount::from_units(u).unwrap_or_default())
}

pub fn script() -> impl Strategy<Value = Script> {
    vec(any::<u8>(), 0..120).prop_map(Script::new)
}

pub fn outpoint() -> impl Strategy<Value = OutPoint> {
    (hash(), any::<u32>()).prop_map(|(txid, vout)| OutPoint { txid, vout })
}

pub fn txin() -> impl Strategy<Value = TxIn> {
    (outpoint(), script(), any::<u32>()).prop_map(|(prevout, unlock, sequence)| TxIn {
        prevout,
        unlock,
        sequence,
    })
}

pub fn txout() -> impl Strategy<Value = TxOut> {
    (amount(), script()).prop_map(|(value, lock)| TxOut { value, lock })
}

pub fn bitset() -> impl Strategy<Value = BitSet> {
    vec(any::<bool>(), 0..60).prop_map(|b| BitSet::from_bools(&b))
}

pub fn service() -> impl Strategy<Value = String> {
    "/[a-z0-9/.]{0,60}"
}

fn bytes48() -> impl Strategy<Value = [u8; 48]> {
    (any::<[u8; 32]>(), any::<[u8; 16]>()).prop_map(|(a, b)| {
        let mut out = [0u8; 48];
        out[..32].copy_from_slice(&a);
        out[32..].copy_from_slice(&b);
        out
    })
}

/// Any ChainLock (the signature need not verify).
pub fn chainlock() -> impl Strategy<Value = ChainLock> {
    (any::<u64>(), hash(), bytes96()).prop_map(|(height, block_hash, signature)| ChainLock {
        height,
        block_hash,
        signature,
    })
}

fn bytes96() -> impl Strategy<Value = [u8; 96]> {
    (bytes48(), bytes48()).prop_map(|(a, b)| {
        let mut out = [0u8; 96];
        out[..48].copy_from_slice(&a);
        out[48..].copy_from_slice(&b);
        out
    })
}

fn bytes64() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&a);
        out[32..].copy_from_slice(&b);
        out
    })
}

pub fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (any::<u64>(), vec(any::<u8>(), 0..100))
            .prop_map(|(height, extra)| Payload::Coinbase(CoinbasePayload { height, extra })),
        (
            any::<u32>(),
            any::<[u8; 32]>(),
            bytes48(),
            any::<[u8; 32]>(),
            script(),
            any::<u16>(),
            service()
        )
            .prop_map(
                |(collateral_vout, owner_key, operator_key, voting_key, payout, bps, service)| {
                    Payload::ProRegister(ProRegister {
                        collateral_vout,
                        owner_key,
                        operator_key,
                        voting_key,
                        payout,
                        operator_reward_bps: bps,
                        service,
                    })
                }
            ),
        (hash(), service(), proptest::option::of(script()), bytes96()).prop_map(
            |(pro_tx_hash, service, operator_payout, signature)| {
                Payload::ProUpdateService(ProUpdateService {
                    pro_tx_hash,
                    service,
                    operator_payout,
                    signature,
                })
            }
        ),
        (hash(), bytes48(), any::<[u8; 32]>(), script(), bytes64()).prop_map(
            |(pro_tx_hash, operator_key, voting_key, payout, signature)| {
                Payload::ProUpdateRegistrar(ProUpdateRegistrar {
                    pro_tx_hash,
                    operator_key,
                    voting_key,
                    payout,
                    signature,
                })
            }
        ),
        (hash(), any::<u16>(), bytes96()).prop_map(|(pro_tx_hash, reason, signature)| {
            Payload::ProRevoke(ProRevoke {
                pro_tx_hash,
                reason,
                signature,
            })
        }),
        (
            hash(),
            any::<u64>(),
            bitset(),
            bitset(),
            vec(bytes48(), 0..4),
            bytes96(),
            bytes96()
        )
            .prop_map(
                |(quorum_hash, quorum_height, signers, valid_members, quorum_vvec, qs, ms)| {
                    Payload::QuorumCommitment(QuorumCommitment {
                        quorum_hash,
                        quorum_height,
                        signers,
                        valid_members,
                        quorum_vvec,
                        quorum_sig: qs,
                        members_sig: ms,
                    })
                }
            ),
        chainlock().prop_map(Payload::ChainLock),
        (hash(), any::<[u8; 32]>(), any::<u64>(), any::<[u8; 32]>()).prop_map(
            |(content_id, creator, price, buyer_key)| {
                Payload::ContentPurchase(crate::media::ContentPurchase {
                    content_id,
                    creator,
                    price,
                    buyer_key,
                })
            }
        ),
        (hash(), vec(any::<u8>(), crate::media::WRAPPED_KEY_LEN)).prop_map(
            |(purchase, wrapped)| {
                let mut wrapped_key = [0u8; crate::media::WRAPPED_KEY_LEN];
                wrapped_key.copy_from_slice(&wrapped);
                Payload::KeyRelease(crate::media::KeyRelease {
                    purchase,
                    wrapped_key,
                })
            }
        ),
        proposal().prop_map(Payload::Proposal),
        vote_batch().prop_map(Payload::Vote),
        vec(any::<u8>(), 0..200).prop_map(|raw| Payload::EthTx(crate::evm::EthTxPayload { raw })),
        any::<u64>()
            .prop_map(|height| Payload::Settlement(crate::evm::SettlementPayload { height })),
    ]
}

pub fn param_change() -> impl Strategy<Value = crate::governance::ParamChange> {
    use crate::governance::ParamChange;
    prop_oneof![
        (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(m, n, t)| {
            ParamChange::RewardSplit {
                miner_bp: m,
                masternode_bp: n,
                treasury_bp: t,
            }
        }),
        any::<u64>().prop_map(ParamChange::MaxBlockSize),
        any::<u64>().prop_map(ParamChange::MinRelayFee),
    ]
}

pub fn proposal() -> impl Strategy<Value = crate::governance::Proposal> {
    use crate::governance::{Proposal, ProposalKind, MAX_PAYEE_SCRIPT_LEN};
    let kind = prop_oneof![
        (vec(any::<u8>(), 0..MAX_PAYEE_SCRIPT_LEN), any::<u64>()).prop_map(|(p, amount)| {
            ProposalKind::TreasuryPayment {
                payee: Script::new(p),
                amount,
            }
        }),
        param_change().prop_map(ProposalKind::ParamChange),
    ];
    (
        "[ -~]{0,64}",
        "[ -~]{0,128}",
        hash(),
        any::<u64>(),
        any::<u16>(),
        kind,
    )
        .prop_map(
            |(title, url, doc_hash, first_superblock, superblocks, kind)| Proposal {
                title,
                url,
                doc_hash,
                first_superblock,
                superblocks,
                kind,
            },
        )
}

pub fn vote_batch() -> impl Strategy<Value = crate::governance::VoteBatch> {
    use crate::governance::{VoteBatch, VoteOutcome, MAX_VOTES_PER_TX};
    let outcome = prop_oneof![
        Just(VoteOutcome::Yes),
        Just(VoteOutcome::No),
        Just(VoteOutcome::Abstain)
    ];
    (
        hash(),
        any::<u64>(),
        proptest::collection::btree_map(hash(), outcome, 1..MAX_VOTES_PER_TX),
        vec(any::<u8>(), 64),
    )
        .prop_map(|(pro_tx_hash, made_at, votes, sig)| {
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&sig);
            VoteBatch {
                pro_tx_hash,
                made_at,
                votes: votes.into_iter().collect(),
                signature,
            }
        })
}

pub fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<u32>(),
        vec(txin(), 0..5),
        vec(txout(), 0..5),
        any::<u64>(),
        proptest::option::of(payload()),
    )
        .prop_map(
            |(version, inputs, outputs, lock_time, payload)| Transaction {
                version,
                inputs,
                outputs,
                lock_time,
                payload,
            },
        )
}

pub fn header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u32>(),
        [hash(), hash(), hash(), hash(), hash()],
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(version, h, time, bits, nonce)| BlockHeader {
            version,
            prev_hash: h[0],
            merkle_root: h[1],
            state_root: h[2],
            mn_list_root: h[3],
            chainlock_hash: h[4],
            time,
            bits,
            nonce,
        })
}

pub fn block() -> impl Strategy<Value = Block> {
    (header(), vec(transaction(), 0..4)).prop_map(|(header, txs)| Block { header, txs })
}

/// The codec property every type must have: decoding the encoding gives
/// the value back, one extra byte is rejected, and so is a truncation.
pub fn assert_round_trip<T>(v: &T)
where
    T: crate::Encode + crate::Decode + PartialEq + std::fmt::Debug,
{
    let bytes = v.encode();
    assert_eq!(crate::decode_exact::<T>(&bytes).as_ref(), Ok(v));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(crate::decode_exact::<T>(&longer).is_err());
    if !bytes.is_empty() {
        assert!(crate::decode_exact::<T>(&bytes[..bytes.len() - 1]).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_exact, Encode};

    fn round_trip<T: Encode + crate::Decode + PartialEq + std::fmt::Debug>(v: &T) {
        assert_round_trip(v)
    }

    proptest! {
        #[test] fn outpoint_round_trip(v in outpoint()) { round_trip(&v) }
        #[test] fn txin_round_trip(v in txin()) { round_trip(&v) }
        #[test] fn txout_round_trip(v in txout()) { round_trip(&v) }
        #[test] fn amount_round_trip(v in amount()) { round_trip(&v) }
        #[test] fn script_round_trip(v in script()) { round_trip(&v) }
        #[test] fn payload_round_trip(v in payload()) { round_trip(&v) }
        #[test] fn transaction_round_trip(v in transaction()) { round_trip(&v) }
        #[test] fn header_round_trip(v in header()) { round_trip(&v) }
        #[test] fn block_round_trip(v in block()) { round_trip(&v) }

        /// Arbitrary bytes never panic a decoder, and whatever decodes
        /// re-encodes to exactly the input (the encoding is canonical).
        #[test]
        fn garbage_never_panics(bytes in vec(any::<u8>(), 0..600)) {
            if let Ok(tx) = decode_exact::<Transaction>(&bytes) {
                prop_assert_eq!(tx.encode(), bytes.clone());
            }
            if let Ok(b) = decode_exact::<Block>(&bytes) {
                prop_assert_eq!(b.encode(), bytes);
            }
        }

        /// The ids computed from a transaction's encoding (one encoding
        /// where it has no inputs) are its txid and wtxid.
        #[test]
        fn ids_from_encoding_are_the_ids(mut tx in transaction(), drop_inputs in any::<bool>()) {
            if drop_inputs {
                tx.inputs.clear();
            }
            prop_assert_eq!(tx.ids_from_encoding(&tx.encode()), (tx.txid(), tx.wtxid()));
        }

        /// The txid ignores unlock data; the wtxid does not.
        #[test]
        fn txid_ignores_unlock(mut tx in transaction(), extra in vec(any::<u8>(), 1..10)) {
            prop_assume!(!tx.inputs.is_empty());
            let (txid, wtxid) = (tx.txid(), tx.wtxid());
            let mut unlock = tx.inputs[0].unlock.as_bytes().to_vec();
            unlock.extend_from_slice(&extra);
            tx.inputs[0].unlock = Script::new(unlock);
            prop_assert_eq!(tx.txid(), txid);
            prop_assert_ne!(tx.wtxid(), wtxid);
        }
    }
}
