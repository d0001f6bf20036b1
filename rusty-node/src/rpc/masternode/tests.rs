//! Unit tests of `masternode`.

use std::collections::BTreeSet;

use jsonrpsee::RpcModule;
use rand::rngs::OsRng;
use rusty_core::masternode::{MinedQuorum, MnState};
use rusty_shared_types::{Address, BitSet, Network, OutPoint, Script};
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

#[test]
fn entry_shapes() {
    let mut e = entry(7, 12);
    e.operator_reward_bps = 1234;
    let v = entry_json(&e, Network::Dev);
    assert_eq!(v["proTxHash"], hash(7).to_string());
    assert_eq!(v["collateralHash"], hash(7).to_string());
    assert_eq!(v["collateralIndex"], 0);
    assert_eq!(v["operatorPubKey"], hex::encode([7u8; 48]));
    assert_eq!(v["ownerKey"], hex::encode([7u8; 32]));
    assert!(v["ownerAddress"]
        .as_str()
        .is_some_and(|a| a.starts_with("drsc1")));
    assert!(v["payoutAddress"]
        .as_str()
        .is_some_and(|a| a.starts_with("drsc1")));
    assert_eq!(v["operatorReward"], 12.34);
    assert_eq!(v["operatorPayoutAddress"], Value::Null);
    assert_eq!(v["lastPaidHeight"], 12);
    assert_eq!(v["registeredHeight"], 1);
    assert_eq!(v["PoSePenalty"], 0);
    assert_eq!(v["PoSeBanHeight"], -1);
    assert_eq!(v["revoked"], false);
    assert_eq!(v["status"], "ENABLED");
    assert_eq!(local_state(Some(&e)), "READY");

    // A non-P2PKH payout shows as script hex.
    e.payout = Script::new(vec![0x51]);
    e.pose_ban_height = Some(40);
    e.pose_penalty = 100;
    let v = entry_json(&e, Network::Dev);
    assert_eq!(v["payoutAddress"], "51");
    assert_eq!(v["PoSeBanHeight"], 40);
    assert_eq!(v["PoSePenalty"], 100);
    assert_eq!(v["status"], "POSE_BANNED");
    assert_eq!(local_state(Some(&e)), "POSE_BANNED");
    e.revoked = true;
    assert_eq!(entry_status(&e), "REVOKED");
    assert_eq!(local_state(Some(&e)), "REVOKED");
    assert_eq!(local_state(None), "WAITING_FOR_PROTX");
    assert_eq!(operator_reward_percent(0), 0.0);
    assert_eq!(operator_reward_percent(10_000), 100.0);
    assert_eq!(operator_reward_percent(5), 0.05);

    let mut mn = MnState::default();
    mn.put_unrecorded(entry(1, 3));
    mn.put_unrecorded(e);
    let list = list_json(&mn, Network::Dev);
    let one = &list[hash(1).to_string()];
    assert_eq!(one["status"], "ENABLED");
    assert_eq!(one["lastPaidHeight"], 3);
    assert!(one["service"].as_str().is_some_and(|s| s.contains("/p2p/")));
    assert_eq!(list[hash(7).to_string()]["status"], "REVOKED");
    assert_eq!(list.as_object().map(|o| o.len()), Some(2));
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
    };
    let v = quorum_json(&q);
    assert_eq!(v["quorumHash"], hash(9).to_string());
    assert_eq!(v["quorumHeight"], 24);
    assert_eq!(v["minedHeight"], 30);
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
    assert_eq!(info["validMembers"], 2);
    assert_eq!(
        info["verificationVector"],
        json!([hex::encode([1u8; 48]), hex::encode([2u8; 48])])
    );

    let s = session_json(&session(4, "complain"));
    let keys: BTreeSet<&str> = s
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
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
    ]
    .into_iter()
    .collect();
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
    assert_eq!(status["operatorPubKey"], operator_pk);
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
    assert_eq!(rpc(&module, "quorum", json!(["list"])).await, Ok(json!([])));
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
    let info = rpc(&module, "protx", json!(["info", pro]))
        .await
        .expect("info");
    assert_eq!(info["operatorPubKey"], operator_pk);
    assert_eq!(info["payoutAddress"], reg["payoutAddress"]);
    assert_eq!(info["ownerAddress"], reg["ownerAddress"]);
    assert_eq!(info["operatorReward"], 2.5);
    assert_eq!(info["registeredHeight"], 16);
    assert_eq!(info["service"], service);
    assert_eq!(info["status"], "ENABLED");
    let status = rpc(&module, "masternode", json!(["status"]))
        .await
        .expect("status");
    assert_eq!(status["state"], "READY");
    assert_eq!(status["proTxHash"], pro);
    let list = rpc(&module, "masternode", json!(["list"]))
        .await
        .expect("list");
    assert_eq!(list[&pro]["status"], "ENABLED");
    assert_eq!(
        rpc(&module, "masternode", json!(["count"])).await,
        Ok(json!({ "total": 1, "enabled": 1 }))
    );
    let winners = rpc(&module, "masternode", json!(["winners", 3]))
        .await
        .expect("winners");
    let winners = winners.as_array().expect("array");
    assert_eq!(winners.len(), 3);
    assert_eq!(winners[0]["height"], 17);
    assert_eq!(winners[2]["height"], 19);
    assert_eq!(winners[0]["proTxHash"], pro);
    assert_eq!(winners[0]["payoutAddress"], reg["payoutAddress"]);
    let reward = Network::Dev.params().masternode_reward(17).as_coins_f64();
    assert_eq!(winners[0]["amount"].as_f64(), Some(reward));
    assert_eq!(
        rpc(&module, "masternode", json!(["winners"]))
            .await
            .map(|w| w.as_array().map(Vec::len)),
        Ok(Some(10))
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
    let info = rpc(&module, "protx", json!(["info", pro]))
        .await
        .expect("info");
    assert_eq!(info["service"], moved);
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
    assert_eq!(status["status"], "REVOKED");
    assert_eq!(
        rpc(&module, "protx", json!(["list", "valid"])).await,
        Ok(json!([]))
    );
    assert_eq!(
        rpc(&module, "masternode", json!(["count"])).await,
        Ok(json!({ "total": 1, "enabled": 0 }))
    );
    assert_eq!(
        rpc(&module, "masternode", json!(["winners"])).await,
        Ok(json!([]))
    );
    assert_eq!(
        rpc(&module, "protx", json!(["revoke", pro])).await,
        Err(codes::INVALID_PARAMETER)
    );

    chain.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}
