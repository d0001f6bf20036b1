//! Unit tests of `masternode`.

use std::collections::BTreeSet;

use jsonrpsee::RpcModule;
use rand::rngs::OsRng;
use rusty_core::masternode::{MinedQuorum, MnState};
use rusty_shared_types::{
    masternode::ProRevoke, Address, BitSet, Block, BlockHeader, Network, OutPoint, Payload, Script,
    Transaction,
};
use serde_json::json;

use super::*;

fn code<T: std::fmt::Debug>(r: Result<T, ErrorObjectOwned>) -> i32 {
    r.expect_err("an error").code()
}

fn hash(b: u8) -> Hash256 {
    Hash256([b; 32])
}

fn pubkey() -> BlsPublicKeyBytes {
    bls::SecretKey::generate(&mut OsRng).public_key().to_bytes()
}

fn entry(b: u8, last_paid: u64) -> MasternodeEntry {
    let payout = Address::p2pkh(Network::Dev, hash(b.wrapping_add(100))).lock_script();
    MasternodeEntry {
        pro_tx_hash: hash(b),
        collateral: OutPoint::new(hash(b), 0),
        owner_key: [b; 32],
        operator_key: [b; 48],
        voting_key: [b; 32],
        payout,
        operator_reward_bps: 0,
        operator_payout: None,
        service: format!(
            "/ip4/10.0.0.{b}/tcp/8433/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
        ),
        registered_height: 1,
        last_paid_height: last_paid,
        pose_penalty: 0,
        pose_ban_height: None,
        revoked: false,
    }
}

fn session(q: u8, phase: &'static str) -> SessionInfo {
    SessionInfo {
        quorum_hash: hash(q),
        quorum_height: 48,
        phase,
        member_index: 2,
        members: 5,
        contributions: 4,
        complaints: 0,
        justifications: 0,
        premature_commitments: 1,
        valid_members: Some(4),
        commitment_ready: false,
    }
}

#[test]
fn subcommands() {
    assert_eq!(
        ProtxCommand::parse("register").ok(),
        Some(ProtxCommand::Register)
    );
    assert_eq!(
        ProtxCommand::parse("update_service").ok(),
        Some(ProtxCommand::UpdateService)
    );
    assert_eq!(
        ProtxCommand::parse("revoke").ok(),
        Some(ProtxCommand::Revoke)
    );
    assert_eq!(ProtxCommand::parse("list").ok(), Some(ProtxCommand::List));
    assert_eq!(ProtxCommand::parse("info").ok(), Some(ProtxCommand::Info));
    let e = ProtxCommand::parse("Register").expect_err("case matters");
    assert_eq!(e.code(), codes::INVALID_PARAMETER);
    assert!(
        e.message()
            .contains("register, update_service, revoke, list, info"),
        "{}",
        e.message()
    );
    assert_eq!(
        MasternodeCommand::parse("winners").ok(),
        Some(MasternodeCommand::Winners)
    );
    assert_eq!(
        MasternodeCommand::parse("count").ok(),
        Some(MasternodeCommand::Count)
    );
    assert_eq!(
        code(MasternodeCommand::parse("start")),
        codes::INVALID_PARAMETER
    );
    assert_eq!(
        QuorumCommand::parse("dkgstatus").ok(),
        Some(QuorumCommand::DkgStatus)
    );
    assert_eq!(
        QuorumCommand::parse("members").ok(),
        Some(QuorumCommand::Members)
    );
    assert_eq!(code(QuorumCommand::parse("sign")), codes::INVALID_PARAMETER);

    assert_eq!(ListFilter::parse(None).ok(), Some(ListFilter::Registered));
    assert_eq!(
        ListFilter::parse(Some("registered")).ok(),
        Some(ListFilter::Registered)
    );
    assert_eq!(
        ListFilter::parse(Some("valid")).ok(),
        Some(ListFilter::Valid)
    );
    assert_eq!(
        code(ListFilter::parse(Some("wallet"))),
        codes::INVALID_PARAMETER
    );
    let mut banned = entry(1, 0);
    banned.pose_ban_height = Some(5);
    assert!(ListFilter::Registered.admits(&banned));
    assert!(!ListFilter::Valid.admits(&banned));
    assert!(ListFilter::Valid.admits(&entry(2, 0)));
}

#[test]
fn parameters() {
    let pk = pubkey();
    assert_eq!(parse_operator_pubkey(&hex::encode(pk)).ok(), Some(pk));
    assert_eq!(
        parse_operator_pubkey(&format!(" {} \n", hex::encode(pk))).ok(),
        Some(pk)
    );
    for bad in [
        String::new(),
        "zz".repeat(48),
        hex::encode(&pk[..47]),
        hex::encode([0xffu8; 48]),
    ] {
        assert_eq!(
            code(parse_operator_pubkey(&bad)),
            codes::INVALID_PARAMETER,
            "{bad}"
        );
    }

    let peer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    let good = format!("/ip4/192.0.2.1/tcp/8433/p2p/{peer}");
    assert_eq!(parse_service(&format!(" {good} ")).ok(), Some(good.clone()));
    let quic = format!("/ip4/192.0.2.1/udp/8433/quic-v1/p2p/{peer}");
    assert_eq!(parse_service(&quic).ok(), Some(quic.clone()));
    for bad in [
        "",
        "192.0.2.1:8433",
        "/ip4/192.0.2.1/tcp/8433",
        "/p2p/nonsense",
    ] {
        let e = parse_service(bad).expect_err(bad);
        assert_eq!(e.code(), codes::INVALID_PARAMETER);
        assert!(e.message().contains("peer id"), "{}", e.message());
    }

    assert_eq!(parse_reward_bps(None).ok(), Some(0));
    assert_eq!(parse_reward_bps(Some(10_000)).ok(), Some(10_000));
    assert_eq!(
        code(parse_reward_bps(Some(10_001))),
        codes::INVALID_PARAMETER
    );
    assert_eq!(
        code(parse_reward_bps(Some(1 << 40))),
        codes::INVALID_PARAMETER
    );

    assert_eq!(parse_revoke_reason(None).ok(), Some(0));
    assert_eq!(parse_revoke_reason(Some(3)).ok(), Some(3));
    assert_eq!(code(parse_revoke_reason(Some(4))), codes::INVALID_PARAMETER);

    assert_eq!(parse_winners_count(None).ok(), Some(10));
    assert_eq!(parse_winners_count(Some(0)).ok(), Some(0));
    assert_eq!(parse_winners_count(Some(MAX_WINNERS)).ok(), Some(1000));
    assert_eq!(
        code(parse_winners_count(Some(MAX_WINNERS + 1))),
        codes::INVALID_PARAMETER
    );
}

/// A set of names.
fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// The keys of an object.
fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn entry_shapes() {
    let mut e = entry(7, 12);
    e.operator_reward_bps = 1234;
    let facts = EntryFacts {
        collateral_address: Some("drsc1collateral".into()),
        confirmations: 5,
        history: EntryHistory::default(),
        wallet: Some(WalletOwnership {
            has_owner_key: true,
            has_voting_key: true,
            owns_payee_script: true,
            ..WalletOwnership::default()
        }),
    };
    let v = entry_json(&e, &facts, Network::Dev);
    // Dash's `protx info`, with `status` besides.
    assert_eq!(
        keys(&v),
        set(&[
            "type",
            "proTxHash",
            "collateralHash",
            "collateralIndex",
            "collateralAddress",
            "operatorReward",
            "state",
            "confirmations",
            "wallet",
            "status",
        ])
    );
    assert_eq!(v["type"], "Regular");
    assert_eq!(v["proTxHash"], hash(7).to_string());
    assert_eq!(v["collateralHash"], hash(7).to_string());
    assert_eq!(v["collateralIndex"], 0);
    assert_eq!(v["collateralAddress"], "drsc1collateral");
    assert_eq!(v["operatorReward"], 12.34);
    assert_eq!(v["confirmations"], 5);
    assert_eq!(v["status"], "ENABLED");
    assert_eq!(
        v["wallet"],
        json!({
            "hasOwnerKey": true,
            "hasOperatorKey": false,
            "hasVotingKey": true,
            "ownsCollateral": false,
            "ownsPayeeScript": true,
            "ownsOperatorRewardScript": false,
        })
    );
    let st = &v["state"];
    assert_eq!(
        keys(st),
        set(&[
            "version",
            "service",
            "registeredHeight",
            "lastPaidHeight",
            "consecutivePayments",
            "PoSePenalty",
            "PoSeRevivedHeight",
            "PoSeBanHeight",
            "revocationReason",
            "ownerAddress",
            "votingAddress",
            "payoutAddress",
            "pubKeyOperator",
        ]),
        "no operatorPayoutAddress without an operator payout: {st}"
    );
    assert_eq!(st["version"], STATE_VERSION);
    assert!(st["service"].as_str().is_some_and(|s| s.contains("/p2p/")));
    assert_eq!(st["registeredHeight"], 1);
    assert_eq!(st["lastPaidHeight"], 12);
    assert_eq!(st["consecutivePayments"], 0);
    assert_eq!(st["PoSePenalty"], 0);
    assert_eq!(st["PoSeRevivedHeight"], -1);
    assert_eq!(st["PoSeBanHeight"], -1);
    assert_eq!(st["revocationReason"], 0);
    assert_eq!(st["pubKeyOperator"], hex::encode([7u8; 48]));
    for k in ["ownerAddress", "votingAddress", "payoutAddress"] {
        assert!(
            st[k].as_str().is_some_and(|a| a.starts_with("drsc1")),
            "{k}: {st}"
        );
    }
    // The owner's address is its key's P2PKH address.
    let owner = Address::p2pkh(
        Network::Dev,
        rusty_crypto::ed25519::pubkey_hash(&rusty_crypto::ed25519::PublicKey([7; 32])),
    );
    assert_eq!(st["ownerAddress"], owner.to_string());
    assert_eq!(local_state(Some(&e)), "READY");

    // Without a wallet there is no `wallet`; nor `collateralAddress`
    // without the coin, as Dash.
    let bare = entry_json(&e, &EntryFacts::default(), Network::Dev);
    assert!(bare.get("wallet").is_none() && bare.get("collateralAddress").is_none());

    // Never paid: the list's last_paid_height is the registration height
    // until the first payment; Dash's lastPaidHeight is 0.
    let fresh = MasternodeEntry {
        registered_height: 30,
        last_paid_height: 30,
        ..entry(8, 0)
    };
    assert_eq!(last_paid_height(&fresh), None);
    assert_eq!(
        state_json(&fresh, &EntryHistory::default(), Network::Dev)["lastPaidHeight"],
        0
    );
    assert_eq!(last_paid_height(&entry(8, 31)), Some(31));

    // Banned, revived before, with an operator payout; a non-P2PKH payout
    // shows as script hex.
    e.payout = Script::new(vec![0x51]);
    e.operator_payout = Some(Address::p2pkh(Network::Dev, hash(70)).lock_script());
    e.pose_ban_height = Some(40);
    e.pose_penalty = 100;
    let history = EntryHistory {
        revived_height: Some(20),
        revocation_reason: None,
    };
    let st = state_json(&e, &history, Network::Dev);
    assert_eq!(st["payoutAddress"], "51");
    assert_eq!(
        st["operatorPayoutAddress"],
        Address::p2pkh(Network::Dev, hash(70)).to_string()
    );
    assert_eq!(st["PoSeBanHeight"], 40);
    assert_eq!(st["PoSePenalty"], 100);
    assert_eq!(st["PoSeRevivedHeight"], 20);
    assert_eq!(entry_status(&e), "POSE_BANNED");
    assert_eq!(local_state(Some(&e)), "POSE_BANNED");
    // The revocation reason shows while revoked.
    let revoked_history = EntryHistory {
        revocation_reason: Some(2),
        ..history
    };
    assert_eq!(
        state_json(&e, &revoked_history, Network::Dev)["revocationReason"],
        0,
        "not revoked: Dash's 0"
    );
    e.revoked = true;
    assert_eq!(
        state_json(&e, &revoked_history, Network::Dev)["revocationReason"],
        2
    );
    assert_eq!(entry_status(&e), "REVOKED");
    assert_eq!(local_state(Some(&e)), "REVOKED");
    assert_eq!(local_state(None), "WAITING_FOR_PROTX");
    assert_eq!(operator_reward_percent(0), 0.0);
    assert_eq!(operator_reward_percent(10_000), 100.0);
    assert_eq!(operator_reward_percent(5), 0.05);

    // `masternode list`: keyed by the collateral outpoint.
    let mut mn = MnState::default();
    let mut one = entry(1, 3);
    one.collateral = OutPoint::new(hash(11), 2);
    mn.put_unrecorded(one);
    mn.put_unrecorded(e);
    let list = list_json(mn.entries(), Network::Dev, |e| ListFacts {
        collateral_address: (e.pro_tx_hash == hash(1)).then(|| "drsc1c".to_string()),
        last_paid_time: 1_700_000_000,
    });
    assert_eq!(list.as_object().map(|o| o.len()), Some(2));
    let key = format!("{}-2", hash(11));
    assert_eq!(outpoint_key(&entry(1, 3)), format!("{}-0", hash(1)));
    let one = &list[&key];
    assert_eq!(
        keys(one),
        set(&[
            "proTxHash",
            "address",
            "payee",
            "status",
            "type",
            "pospenaltyscore",
            "consecutivePayments",
            "lastpaidtime",
            "lastpaidblock",
            "owneraddress",
            "votingaddress",
            "collateraladdress",
            "pubkeyoperator",
        ])
    );
    assert_eq!(one["proTxHash"], hash(1).to_string());
    assert!(one["address"].as_str().is_some_and(|s| s.contains("/p2p/")));
    assert!(one["payee"]
        .as_str()
        .is_some_and(|a| a.starts_with("drsc1")));
    assert_eq!(one["status"], "ENABLED");
    assert_eq!(one["type"], "Regular");
    assert_eq!(one["pospenaltyscore"], 0);
    assert_eq!(one["consecutivePayments"], 0);
    assert_eq!(one["lastpaidtime"], 1_700_000_000u64);
    assert_eq!(one["lastpaidblock"], 3);
    assert_eq!(one["collateraladdress"], "drsc1c");
    assert_eq!(one["pubkeyoperator"], hex::encode([1u8; 48]));
    let seven = &list[&format!("{}-0", hash(7))];
    assert_eq!(seven["status"], "REVOKED");
    assert_eq!(seven["pospenaltyscore"], 100);
    assert_eq!(seven["collateraladdress"], "UNKNOWN");
}

#[test]
fn status_count_and_winner_shapes() {
    let key = [9u8; 48];
    let v = status_json(
        None,
        &EntryHistory::default(),
        &key,
        "/ip4/10.0.0.9/tcp/8433/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
        Network::Dev,
    );
    assert_eq!(
        keys(&v),
        set(&[
            "outpoint",
            "service",
            "type",
            "state",
            "status",
            "operatorPubKey"
        ])
    );
    assert_eq!(v["outpoint"], NULL_OUTPOINT);
    assert!(v["service"]
        .as_str()
        .is_some_and(|s| s.starts_with("/ip4/10.0.0.9/")));
    assert_eq!(v["type"], "Regular");
    assert_eq!(v["state"], "WAITING_FOR_PROTX");
    assert_eq!(v["status"], "Waiting for ProTx to appear on-chain");
    assert_eq!(v["operatorPubKey"], hex::encode(key));

    let e = entry(9, 4);
    let v = status_json(Some(&e), &EntryHistory::default(), &key, "", Network::Dev);
    assert_eq!(v["outpoint"], format!("{}-0", hash(9)));
    assert_eq!(v["service"], e.service);
    assert_eq!(v["proTxHash"], hash(9).to_string());
    assert_eq!(v["collateralHash"], hash(9).to_string());
    assert_eq!(v["collateralIndex"], 0);
    assert_eq!(v["state"], "READY");
    assert_eq!(v["status"], "Ready");
    assert_eq!(
        v["dmnState"],
        state_json(&e, &EntryHistory::default(), Network::Dev)
    );
    assert_eq!(status_text("POSE_BANNED"), "Masternode was PoSe banned");

    assert_eq!(
        count_json(3, 2),
        json!({
            "total": 3,
            "enabled": 2,
            "detailed": {
                "regular": { "total": 3, "enabled": 2 },
                "evo": { "total": 0, "enabled": 0 },
            },
        })
    );

    let a = Address::p2pkh(Network::Dev, hash(1));
    let b = Address::p2pkh(Network::Dev, hash(2));
    let w = winners_json(
        &[(4, None), (5, Some(a.lock_script()))],
        &[(6, b.lock_script()), (7, a.lock_script())],
        Network::Dev,
    );
    assert_eq!(
        w,
        json!({
            "4": "Unknown",
            "5": a.to_string(),
            "6": b.to_string(),
            "7": a.to_string(),
        })
    );
}

/// What the history walk reads from one block's change of an entry.
#[test]
fn history_rules() {
    let before = MasternodeEntry {
        pose_ban_height: Some(30),
        pose_penalty: 100,
        ..entry(3, 0)
    };
    let lifted = MasternodeEntry {
        pose_ban_height: None,
        pose_penalty: 0,
        ..before.clone()
    };
    assert!(revived_in_block(Some(&before), &lifted));
    assert!(!revived_in_block(Some(&before), &before), "still banned");
    assert!(!revived_in_block(Some(&lifted), &lifted), "never banned");
    assert!(!revived_in_block(None, &lifted), "registered in the block");
    // A new operator key bans; unbanned after the block means its
    // `protx update_service` came in the same block.
    let new_key = MasternodeEntry {
        operator_key: [42; 48],
        ..lifted.clone()
    };
    assert!(revived_in_block(Some(&lifted), &new_key));

    let revoke = |pro: Hash256, reason: u16| Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs: Vec::new(),
        lock_time: 0,
        payload: Some(Payload::ProRevoke(ProRevoke {
            pro_tx_hash: pro,
            reason,
            signature: [0; 96],
        })),
    };
    let block = Block {
        header: BlockHeader {
            version: 1,
            prev_hash: Hash256::ZERO,
            merkle_root: Hash256::ZERO,
            state_root: Hash256::ZERO,
            mn_list_root: Hash256::ZERO,
            chainlock_hash: Hash256::ZERO,
            time: 0,
            bits: 0,
            nonce: 0,
        },
        txs: vec![revoke(hash(3), 1), revoke(hash(4), 2), revoke(hash(3), 3)],
    };
    assert_eq!(revoke_reason_in(&block, &hash(3)), Some(3), "the last one");
    assert_eq!(revoke_reason_in(&block, &hash(4)), Some(2));
    assert_eq!(revoke_reason_in(&block, &hash(5)), None);
}

/// The projection agrees with applying `next_payee` block after block.
#[test]
fn winners_follow_next_payee() {
    let mut mn = MnState::default();
    for (b, paid) in [(1, 10), (2, 10), (3, 4), (4, 20), (5, 0)] {
        mn.put_unrecorded(entry(b, paid));
    }
    let mut banned = entry(6, 0);
    banned.pose_ban_height = Some(3);
    mn.put_unrecorded(banned);

    let projected = project_winners(mn.entries(), 21, 12);
    assert_eq!(projected.len(), 12);
    let mut sim = mn.clone();
    for (height, pro) in &projected {
        let payee = sim.next_payee().cloned().expect("a payee");
        assert_eq!(payee.pro_tx_hash, *pro, "height {height}");
        sim.put_unrecorded(MasternodeEntry {
            last_paid_height: *height,
            ..payee
        });
    }
    // Oldest payment first, ties by hash, the banned one never.
    let order: Vec<u8> = projected.iter().map(|(_, p)| p.0[0]).collect();
    assert_eq!(order, [5, 3, 1, 2, 4, 5, 3, 1, 2, 4, 5, 3]);
    assert_eq!(projected[0].0, 21);
    assert_eq!(projected[11].0, 32);
    // The state itself is untouched.
    assert_eq!(mn.get(&hash(5)).map(|e| e.last_paid_height), Some(0));
    assert!(project_winners(mn.entries(), 21, 0).is_empty());
    assert!(project_winners(MnState::default().entries(), 1, 10).is_empty());
}

#[test]
fn quorum_and_session_shapes() {
    let q = MinedQuorum {
        quorum_hash: hash(9),
        quorum_height: 24,
        mined_height: 30,
        members: vec![hash(1), hash(2), hash(3)],
        valid_members: BitSet::from_bools(&[true, false, true]),
        vvec: vec![[1; 48], [2; 48]],
        active_from: Some(30),
    };
    let v = quorum_json(&q);
    assert_eq!(v["quorumHash"], hash(9).to_string());
    assert_eq!(v["quorumHeight"], 24);
    assert_eq!(v["minedHeight"], 30);
    assert_eq!(v["activeFrom"], 30);
    assert_eq!(v["members"], 3);
    assert_eq!(v["validMembers"], 2);
    assert_eq!(v["publicKey"], hex::encode([1u8; 48]));
    let members = quorum_members_json(&q);
    assert_eq!(
        members,
        json!([
            { "proTxHash": hash(1).to_string(), "valid": true },
            { "proTxHash": hash(2).to_string(), "valid": false },
            { "proTxHash": hash(3).to_string(), "valid": true },
        ])
    );
    let info = quorum_info_json(&q);
    assert_eq!(info["members"], members);
    assert_eq!(info["quorumHash"], hash(9).to_string());
    assert_eq!(info["validMembers"], 2);
    assert_eq!(
        info["verificationVector"],
        json!([hex::encode([1u8; 48]), hex::encode([2u8; 48])])
    );

    // `quorum list`: type name → hashes, newest first.
    assert_eq!(llmq_type_name(50, 30), "llmq_50_60");
    assert_eq!(llmq_type_name(10, 6), "llmq_10_60");
    assert_eq!(llmq_type_name(5, 3), "llmq_5_60");
    assert_eq!(llmq_type_name(400, 240), "llmq_400_60");
    assert_eq!(llmq_type_name(0, 0), "llmq_1_0");
    let older = MinedQuorum {
        quorum_hash: hash(8),
        ..q.clone()
    };
    let quorums = [older, q.clone()];
    assert_eq!(
        quorum_list_json("llmq_5_60", &quorums, 4),
        json!({ "llmq_5_60": [hash(9).to_string(), hash(8).to_string()] })
    );
    assert_eq!(
        quorum_list_json("llmq_5_60", &quorums, 1),
        json!({ "llmq_5_60": [hash(9).to_string()] })
    );
    assert_eq!(
        quorum_list_json("llmq_5_60", &[], 2),
        json!({ "llmq_5_60": [] })
    );

    let s = session_json(&session(4, "complain"));
    let keys: BTreeSet<&str> = s
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = set(&[
        "quorumHash",
        "quorumHeight",
        "phase",
        "memberIndex",
        "members",
        "contributions",
        "complaints",
        "justifications",
        "prematureCommitments",
        "validMembers",
        "commitmentReady",
    ]);
    assert_eq!(keys, expected);
    assert_eq!(s["phase"], "complain");
    assert_eq!(s["validMembers"], 4);
}

#[test]
fn dkg_timing_and_notes() {
    assert_eq!(next_dkg_height(0, 24), 24);
    assert_eq!(next_dkg_height(23, 24), 24);
    assert_eq!(next_dkg_height(24, 24), 48);
    assert_eq!(next_dkg_height(5, 0), 6);

    let mut facts = DkgFacts {
        height: 30,
        entry: None,
        pending_with_us: Vec::new(),
        valid_count: 1,
        quorum_interval: 24,
        quorum_threshold: 3,
        dkg_phase_blocks: 2,
        mining_window: 18,
    };
    let v = dkginfo_json(false, &facts, &[], &[]);
    assert_eq!(v["masternode"], false);
    assert_eq!(v["proTxHash"], Value::Null);
    assert_eq!(v["eligible"], false);
    assert_eq!(v["nextDkgHeight"], 48);
    assert_eq!(v["blocksUntilNextDkg"], 18);
    assert_eq!(v["dkgPhaseBlocks"], 2);
    assert_eq!(v["miningWindow"], 18);
    assert!(v["note"]
        .as_str()
        .is_some_and(|n| n.contains("--operator-key")));

    let note = |f: &DkgFacts, s: &[SessionInfo]| dkg_note(true, f, s, 48);
    assert!(note(&facts, &[]).starts_with("not registered: run `rusty-cli masternode register`"));

    facts.entry = Some(entry(3, 0));
    assert_eq!(
        note(&facts, &[]),
        "eligible, but only 1 valid masternodes are registered and a DKG needs 3; \
         members of the next DKG are chosen at height 48"
    );
    facts.valid_count = 5;
    assert_eq!(
        note(&facts, &[]),
        "eligible; members of the next DKG are chosen at height 48"
    );
    facts.pending_with_us = vec![hash(8)];
    assert!(note(&facts, &[]).starts_with(&format!("member of DKG {}", hash(8))));
    assert_eq!(
        note(&facts, &[session(8, "commit")]),
        format!("member of DKG {} (phase commit)", hash(8))
    );
    let v = dkginfo_json(true, &facts, &[session(8, "commit")], &[hash(2)]);
    assert_eq!(v["eligible"], true);
    assert_eq!(v["proTxHash"], hash(3).to_string());
    assert_eq!(v["pendingDkgsIncludingUs"], json!([hash(8).to_string()]));
    assert_eq!(v["quorumsWithKeyShare"], json!([hash(2).to_string()]));
    assert_eq!(v["activeSessions"][0]["phase"], "commit");

    if let Some(e) = facts.entry.as_mut() {
        e.pose_ban_height = Some(29);
    }
    assert!(note(&facts, &[]).starts_with("PoSe-banned since height 29"));
    assert_eq!(dkginfo_json(true, &facts, &[], &[])["eligible"], false);
    if let Some(e) = facts.entry.as_mut() {
        e.revoked = true;
    }
    assert!(note(&facts, &[]).starts_with("revoked"));
}

/// Calls `method`; an RPC error as its code.
async fn rpc(m: &RpcModule<RpcContext>, method: &str, params: Value) -> Result<Value, i32> {
    let params: Vec<Value> = params.as_array().cloned().unwrap_or_default();
    m.call::<_, Value>(method, params)
        .await
        .map_err(|e| match e {
            jsonrpsee::core::server::MethodsError::JsonRpc(e) => e.code(),
            other => panic!("{other}"),
        })
}

/// Every method through the RPC module, on an in-memory dev chain with a
/// wallet: register, mine, read back, update, revoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_in_process() {
    use crate::{llmq::Operator, service::spawn_chain_service};
    use rusty_core::test_utils::memory_state;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = memory_state(Some(dir.path()));
    let mine_to = state.new_address().expect("address");
    state
        .generate(15, &mine_to, u64::MAX, rusty_core::now())
        .expect("generate");
    let (chain, thread) = spawn_chain_service(state).expect("chain service");
    let operator = bls::SecretKey::generate(&mut OsRng);
    let operator_pk = hex::encode(operator.public_key().to_bytes());
    let make = |operator: Option<Operator>| {
        super::super::build_module(RpcContext {
            chain: chain.clone(),
            network: Network::Dev,
            stop: tokio::sync::watch::channel(false).0,
            miner: None,
            mine_threads: 1,
            wallet_fee_rate: 2_000,
            p2p: None,
            operator,
            media: None,
            datadir: None,
            playback_base_url: None,
            bridge: None,
            eth_filters: Default::default(),
        })
    };
    let module = make(Some(Operator {
        key: operator.clone(),
    }));
    let plain = make(None);
    let mine = |n: u64| {
        let chain = chain.clone();
        let to = mine_to;
        async move { chain.generate(n, &to, u64::MAX).await.expect("generate") }
    };

    // Before registration.
    let status = rpc(&module, "masternode", json!(["status"]))
        .await
        .expect("status");
    assert_eq!(status["state"], "WAITING_FOR_PROTX");
    assert_eq!(status["status"], "Waiting for ProTx to appear on-chain");
    assert_eq!(status["outpoint"], NULL_OUTPOINT);
    assert_eq!(status["type"], "Regular");
    assert_eq!(status["service"], "", "no P2P here");
    assert_eq!(status["operatorPubKey"], operator_pk);
    assert!(status.get("proTxHash").is_none() && status.get("dmnState").is_none());
    assert_eq!(
        rpc(&plain, "masternode", json!(["status"])).await,
        Err(codes::INTERNAL_ERROR)
    );
    let info = rpc(&module, "dkginfo", json!([])).await.expect("dkginfo");
    assert_eq!(info["masternode"], true);
    assert_eq!(info["eligible"], false);
    assert_eq!(info["height"], 15);
    assert_eq!(info["nextDkgHeight"], 24);
    assert!(info["note"]
        .as_str()
        .is_some_and(|n| n.starts_with("not registered")));
    assert_eq!(
        rpc(&module, "getbestchainlock", json!([])).await,
        Err(codes::INTERNAL_ERROR)
    );
    // Dev's one quorum type (5 members, 3 to sign), no quorum yet.
    assert_eq!(
        rpc(&module, "quorum", json!(["list"])).await,
        Ok(json!({ "llmq_5_60": [] }))
    );
    assert_eq!(
        rpc(&module, "quorum", json!(["list", 3])).await,
        Ok(json!({ "llmq_5_60": [] }))
    );
    assert_eq!(
        rpc(&module, "masternode", json!(["list"])).await,
        Ok(json!({}))
    );
    // Before any masternode: the past blocks paid none, nothing projected.
    let winners = rpc(&module, "masternode", json!(["winners", 2]))
        .await
        .expect("winners");
    assert_eq!(
        winners,
        json!({ "13": "Unknown", "14": "Unknown", "15": "Unknown" })
    );
    let dkg = rpc(&module, "quorum", json!(["dkgstatus"]))
        .await
        .expect("dkgstatus");
    assert_eq!(
        dkg,
        json!({ "pending": [], "sessions": [], "minableCommitments": [] })
    );

    // Parameter errors.
    let service =
        "/ip4/127.0.0.1/tcp/28433/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    assert_eq!(
        rpc(&module, "protx", json!([])).await,
        Err(codes::INVALID_PARAMS)
    );
    assert_eq!(
        rpc(&module, "protx", json!(["destroy"])).await,
        Err(codes::INVALID_PARAMETER)
    );
    assert_eq!(
        rpc(&module, "protx", json!(["register", "00", service])).await,
        Err(codes::INVALID_PARAMETER)
    );
    assert_eq!(
        rpc(
            &module,
            "protx",
            json!(["register", operator_pk, "127.0.0.1:1"])
        )
        .await,
        Err(codes::INVALID_PARAMETER)
    );
    assert_eq!(
        rpc(
            &module,
            "protx",
            json!(["register", operator_pk, service, 0, "nope"])
        )
        .await,
        Err(codes::INVALID_ADDRESS_OR_KEY)
    );
    assert_eq!(
        rpc(&module, "protx", json!(["info", hash(1).to_string()])).await,
        Err(codes::INVALID_PARAMETER)
    );
    assert_eq!(
        rpc(&plain, "protx", json!(["revoke", hash(1).to_string()])).await,
        Err(codes::INTERNAL_ERROR)
    );

    // Register and mine it.
    let reg = rpc(
        &module,
        "protx",
        json!(["register", operator_pk, service, 250]),
    )
    .await
    .expect("register");
    let pro = reg["proTxHash"].as_str().expect("proTxHash").to_string();
    for k in ["collateralAddress", "ownerAddress", "payoutAddress"] {
        assert!(
            reg[k].as_str().is_some_and(|a| a.starts_with("drsc1")),
            "{k}: {reg}"
        );
    }
    mine(1).await;
    // Once mined, the same operator key is refused.
    assert_eq!(
        rpc(&module, "protx", json!(["register", operator_pk, service])).await,
        Err(codes::INVALID_PARAMETER)
    );
    assert_eq!(
        rpc(&module, "protx", json!(["list"])).await,
        Ok(json!([pro]))
    );
    assert_eq!(
        rpc(&module, "protx", json!(["list", "valid"])).await,
        Ok(json!([pro]))
    );
    assert_eq!(
        rpc(&module, "protx", json!(["list", "registered", false])).await,
        Ok(json!([pro]))
    );
    assert_eq!(
        rpc(&module, "protx", json!(["list", "registered", "maybe"])).await,
        Err(codes::INVALID_PARAMS),
        "serde's error (the parameter layer, not in this module, makes it -8)"
    );
    let info = rpc(&module, "protx", json!(["info", pro]))
        .await
        .expect("info");
    assert_eq!(info["type"], "Regular");
    assert_eq!(info["proTxHash"], pro);
    assert_eq!(info["collateralIndex"], 0);
    assert_eq!(
        info["collateralHash"], pro,
        "the registration pays the collateral"
    );
    assert_eq!(info["collateralAddress"], reg["collateralAddress"]);
    assert_eq!(info["operatorReward"], 2.5);
    assert_eq!(info["confirmations"], 1);
    assert_eq!(info["status"], "ENABLED");
    let st = &info["state"];
    assert_eq!(st["pubKeyOperator"], operator_pk);
    assert_eq!(st["payoutAddress"], reg["payoutAddress"]);
    assert_eq!(st["ownerAddress"], reg["ownerAddress"]);
    assert_eq!(
        st["votingAddress"], reg["ownerAddress"],
        "voting key = owner key"
    );
    assert_eq!(st["registeredHeight"], 16);
    assert_eq!(st["lastPaidHeight"], 0, "not paid yet");
    assert_eq!(st["service"], service);
    assert_eq!(st["PoSePenalty"], 0);
    assert_eq!(st["PoSeBanHeight"], -1);
    assert_eq!(st["PoSeRevivedHeight"], -1);
    assert_eq!(st["revocationReason"], 0);
    assert!(st.get("operatorPayoutAddress").is_none());
    // The wallet registered it: it holds the owner (and voting) key, the
    // collateral and the payout; this node runs the operator key.
    assert_eq!(
        info["wallet"],
        json!({
            "hasOwnerKey": true,
            "hasOperatorKey": true,
            "hasVotingKey": true,
            "ownsCollateral": true,
            "ownsPayeeScript": true,
            "ownsOperatorRewardScript": false,
        })
    );
    let plain_info = rpc(&plain, "protx", json!(["info", pro]))
        .await
        .expect("info");
    assert_eq!(plain_info["wallet"]["hasOperatorKey"], false);
    assert_eq!(plain_info["state"], info["state"]);
    // `protx list registered true`: the same objects.
    assert_eq!(
        rpc(&module, "protx", json!(["list", "registered", true])).await,
        Ok(json!([info.clone()]))
    );
    assert_eq!(
        rpc(&module, "protx", json!(["list", "valid", "1"])).await,
        Ok(json!([info.clone()]))
    );
    let status = rpc(&module, "masternode", json!(["status"]))
        .await
        .expect("status");
    assert_eq!(status["state"], "READY");
    assert_eq!(status["status"], "Ready");
    assert_eq!(status["proTxHash"], pro);
    assert_eq!(status["outpoint"], format!("{pro}-0"));
    assert_eq!(status["service"], service);
    assert_eq!(status["type"], "Regular");
    assert_eq!(status["collateralHash"], pro);
    assert_eq!(status["collateralIndex"], 0);
    assert_eq!(status["dmnState"], info["state"]);
    let list = rpc(&module, "masternode", json!(["list"]))
        .await
        .expect("list");
    let listed = &list[&format!("{pro}-0")];
    assert_eq!(list.as_object().map(|o| o.len()), Some(1));
    assert_eq!(listed["proTxHash"], pro);
    assert_eq!(listed["status"], "ENABLED");
    assert_eq!(listed["address"], service);
    assert_eq!(listed["payee"], reg["payoutAddress"]);
    assert_eq!(listed["collateraladdress"], reg["collateralAddress"]);
    assert_eq!(listed["owneraddress"], reg["ownerAddress"]);
    assert_eq!(listed["pubkeyoperator"], operator_pk);
    assert_eq!(listed["lastpaidblock"], 0);
    assert_eq!(listed["lastpaidtime"], 0);
    assert_eq!(
        rpc(&module, "masternode", json!(["count"])).await,
        Ok(json!({
            "total": 1,
            "enabled": 1,
            "detailed": {
                "regular": { "total": 1, "enabled": 1 },
                "evo": { "total": 0, "enabled": 0 },
            },
        }))
    );
    // Heights 13 to the tip (16) paid no masternode (the list before 16
    // was empty); the next 20 all pay the only one.
    let winners = rpc(&module, "masternode", json!(["winners", 3]))
        .await
        .expect("winners");
    let winners = winners.as_object().expect("object");
    assert_eq!(winners.len(), 4 + PROJECTED_WINNERS);
    for h in 13..=16 {
        assert_eq!(winners[&h.to_string()], "Unknown", "height {h}");
    }
    for h in 17..=36 {
        assert_eq!(winners[&h.to_string()], reg["payoutAddress"], "height {h}");
    }
    assert_eq!(
        rpc(&module, "masternode", json!(["winners"]))
            .await
            .map(|w| w.as_object().map(|o| o.len())),
        Ok(Some(11 + PROJECTED_WINNERS))
    );
    let info = rpc(&module, "dkginfo", json!([])).await.expect("dkginfo");
    assert_eq!(info["eligible"], true);
    assert_eq!(info["proTxHash"], pro);
    assert!(
        info["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("eligible, but only 1")),
        "{info}"
    );

    // Update the service, then revoke.
    let moved = service.replace("127.0.0.1", "127.0.0.2");
    let up = rpc(&module, "protx", json!(["update_service", pro, moved]))
        .await
        .expect("update");
    assert_eq!(up["txid"].as_str().map(str::len), Some(64));
    assert_eq!(
        rpc(&plain, "protx", json!(["update_service", pro, moved])).await,
        Err(codes::INTERNAL_ERROR)
    );
    mine(1).await;
    // Block 17 paid it, and moved its service (no ban to lift).
    let info = rpc(&module, "protx", json!(["info", pro]))
        .await
        .expect("info");
    assert_eq!(info["state"]["service"], moved);
    assert_eq!(info["state"]["lastPaidHeight"], 17);
    assert_eq!(info["state"]["PoSeRevivedHeight"], -1);
    assert_eq!(info["confirmations"], 2);
    let list = rpc(&module, "masternode", json!(["list"]))
        .await
        .expect("list");
    let listed = &list[&format!("{pro}-0")];
    assert_eq!(listed["lastpaidblock"], 17);
    let time_17 = chain
        .query(|s| {
            let c = s.chain();
            c.hash_at(17)
                .and_then(|h| c.entry(&h))
                .map(|e| e.header.time)
        })
        .await
        .expect("query")
        .expect("block 17");
    assert_eq!(listed["lastpaidtime"], time_17);
    let winners = rpc(&module, "masternode", json!(["winners", 1]))
        .await
        .expect("winners");
    assert_eq!(winners["16"], "Unknown");
    assert_eq!(winners["17"], reg["payoutAddress"], "as paid");
    assert_eq!(winners["18"], reg["payoutAddress"], "projected");
    assert_eq!(
        rpc(&module, "protx", json!(["revoke", pro, 9])).await,
        Err(codes::INVALID_PARAMETER)
    );
    rpc(&module, "protx", json!(["revoke", pro, 1]))
        .await
        .expect("revoke");
    mine(1).await;
    let status = rpc(&module, "masternode", json!(["status"]))
        .await
        .expect("status");
    assert_eq!(status["state"], "REVOKED");
    assert_eq!(status["status"], "Masternode was revoked by its operator");
    // The reason comes from the revocation in block 18 (which still paid
    // it: the payee is chosen from the list before the block).
    assert_eq!(status["dmnState"]["revocationReason"], 1);
    assert_eq!(status["dmnState"]["PoSeBanHeight"], 18);
    assert_eq!(status["dmnState"]["PoSeRevivedHeight"], -1);
    let info = rpc(&module, "protx", json!(["info", pro]))
        .await
        .expect("info");
    assert_eq!(info["status"], "REVOKED");
    assert_eq!(info["state"], status["dmnState"]);
    assert_eq!(info["state"]["lastPaidHeight"], 18);
    assert_eq!(
        rpc(&module, "protx", json!(["list", "valid"])).await,
        Ok(json!([]))
    );
    assert_eq!(
        rpc(&module, "protx", json!(["list", "valid", true])).await,
        Ok(json!([]))
    );
    assert_eq!(
        rpc(&module, "masternode", json!(["list"]))
            .await
            .map(|l| l[&format!("{pro}-0")]["status"].clone()),
        Ok(json!("REVOKED"))
    );
    let count = rpc(&module, "masternode", json!(["count"]))
        .await
        .expect("count");
    assert_eq!(count["total"], 1);
    assert_eq!(count["enabled"], 0);
    assert_eq!(
        count["detailed"]["regular"],
        json!({ "total": 1, "enabled": 0 })
    );
    // The past payees stay; nothing is projected without a valid one.
    let winners = rpc(&module, "masternode", json!(["winners"]))
        .await
        .expect("winners");
    let winners = winners.as_object().expect("object");
    assert_eq!(winners.len(), 11, "heights 8 to 18");
    assert_eq!(winners["16"], "Unknown");
    assert_eq!(winners["17"], reg["payoutAddress"]);
    assert_eq!(winners["18"], reg["payoutAddress"]);
    assert!(!winners.contains_key("19"));
    assert_eq!(
        rpc(&module, "protx", json!(["revoke", pro])).await,
        Err(codes::INVALID_PARAMETER)
    );

    chain.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}
