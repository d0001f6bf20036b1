//! Unit tests of `net`.

use super::*;

fn code<T: std::fmt::Debug>(r: Result<T, ErrorObjectOwned>) -> i32 {
    r.expect_err("an error").code()
}

fn peer() -> PeerId {
    PeerId::random()
}

#[test]
fn addnode_commands() {
    assert_eq!(AddNodeCommand::parse("add").ok(), Some(AddNodeCommand::Add));
    assert_eq!(
        AddNodeCommand::parse("remove").ok(),
        Some(AddNodeCommand::Remove)
    );
    assert_eq!(
        AddNodeCommand::parse("onetry").ok(),
        Some(AddNodeCommand::OneTry)
    );
    assert_eq!(code(AddNodeCommand::parse("ADD")), codes::INVALID_PARAMETER);
    assert_eq!(BanCommand::parse("add").ok(), Some(BanCommand::Add));
    assert_eq!(BanCommand::parse("remove").ok(), Some(BanCommand::Remove));
    assert_eq!(code(BanCommand::parse("onetry")), codes::INVALID_PARAMETER);
}

#[test]
fn node_addresses() {
    let p = peer();
    let full = format!("/ip4/127.0.0.1/tcp/28433/p2p/{p}");
    let a = parse_node_addr(&full).expect("multiaddr");
    assert_eq!(peer_id_of(&a), Some(p));
    assert_eq!(
        parse_node_addr("/ip4/127.0.0.1/udp/28433/quic-v1")
            .expect("quic")
            .to_string(),
        "/ip4/127.0.0.1/udp/28433/quic-v1"
    );
    // Bitcoin-style host:port is TCP.
    assert_eq!(
        parse_node_addr("192.0.2.1:8433")
            .expect("ip:port")
            .to_string(),
        "/ip4/192.0.2.1/tcp/8433"
    );
    assert_eq!(
        parse_node_addr("[::1]:8433").expect("ipv6").to_string(),
        "/ip6/::1/tcp/8433"
    );
    for bad in ["", "nonsense", "/ip4/999.0.0.1/tcp/1", "/ip4/1.2.3.4/tcp/x"] {
        let e = parse_node_addr(bad).expect_err(bad);
        assert_eq!(e.code(), codes::INVALID_PARAMETER);
        assert!(e.message().contains("multiaddr"), "{}", e.message());
    }
}

#[test]
fn disconnect_targets() {
    let p = peer();
    assert_eq!(
        DisconnectTarget::parse(Some(&p.to_string()), None).ok(),
        Some(DisconnectTarget::Peer(p))
    );
    assert_eq!(
        DisconnectTarget::parse(Some(&format!("/ip4/10.0.0.1/tcp/1/p2p/{p}")), None).ok(),
        Some(DisconnectTarget::Peer(p))
    );
    let addr: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().expect("static");
    assert_eq!(
        DisconnectTarget::parse(Some("/ip4/10.0.0.1/tcp/1"), None).ok(),
        Some(DisconnectTarget::Addr(addr))
    );
    assert_eq!(
        DisconnectTarget::parse(Some(""), Some(7)).ok(),
        Some(DisconnectTarget::Id(7))
    );
    assert_eq!(
        DisconnectTarget::parse(None, Some(7)).ok(),
        Some(DisconnectTarget::Id(7))
    );
    assert_eq!(
        code(DisconnectTarget::parse(Some(&p.to_string()), Some(7))),
        codes::INVALID_PARAMS
    );
    assert_eq!(
        code(DisconnectTarget::parse(None, None)),
        codes::INVALID_PARAMS
    );
    assert_eq!(
        code(DisconnectTarget::parse(Some("what"), None)),
        codes::INVALID_PARAMETER
    );
}

#[test]
fn ban_targets() {
    let p = peer();
    assert_eq!(
        parse_ban_target(&p.to_string()).ok(),
        Some(BanTarget::Peer(p))
    );
    assert_eq!(
        parse_ban_target("192.0.2.7").ok(),
        Some(BanTarget::Ip("192.0.2.7".parse().expect("static")))
    );
    assert_eq!(
        parse_ban_target("/ip4/192.0.2.7/tcp/8433").ok(),
        Some(BanTarget::Ip("192.0.2.7".parse().expect("static")))
    );
    assert_eq!(
        parse_ban_target(&format!("/ip4/192.0.2.7/tcp/8433/p2p/{p}")).ok(),
        Some(BanTarget::Peer(p))
    );
    assert_eq!(
        code(parse_ban_target("nobody")),
        codes::CLIENT_INVALID_IP_OR_SUBNET
    );
    // listbanned's address reads back as the same target.
    for t in [
        BanTarget::Peer(p),
        BanTarget::Ip("::1".parse().expect("static")),
    ] {
        assert_eq!(parse_ban_target(&t.to_string()).ok(), Some(t));
    }
}

#[test]
fn ban_durations() {
    let now = 1_700_000_000;
    let secs = |b, abs| ban_duration(b, abs, now).map(|d| d.as_secs());
    assert_eq!(secs(None, false).ok(), Some(DEFAULT_BAN_SECS));
    assert_eq!(secs(Some(0), false).ok(), Some(DEFAULT_BAN_SECS));
    assert_eq!(secs(Some(60), false).ok(), Some(60));
    assert_eq!(secs(Some(1_700_000_100), true).ok(), Some(100));
    assert_eq!(code(secs(Some(now as i64), true)), codes::INVALID_PARAMETER);
    assert_eq!(code(secs(Some(-1), false)), codes::INVALID_PARAMETER);
}

#[test]
fn result_shapes() {
    assert_eq!(client_version("0.1.0"), 100);
    assert_eq!(client_version("25.1.3"), 250_103);
    assert_eq!(client_version("1.2.0-rc.1"), 10_200);

    let p = peer();
    let info = PeerInfo {
        id: 3,
        peer_id: p,
        addr: "/ip4/127.0.0.1/tcp/5000".parse().expect("static"),
        inbound: true,
        connected_secs: 10,
        score: 1.5,
        ping: Some(Duration::from_millis(250)),
        relayed: false,
        agent: Some("rusty-coin/0.1.0".into()),
        persistent: false,
    };
    let v = peer_json(&info, None, PeerActivity::default(), 1_000);
    assert_eq!(v["id"], 3);
    assert_eq!(v["peerid"], p.to_string());
    assert_eq!(v["addr"], "/ip4/127.0.0.1/tcp/5000");
    assert_eq!(v["connection_type"], "inbound");
    assert_eq!(v["conntime"], 990);
    assert_eq!(v["pingtime"], 0.25);
    assert_eq!(v["synced_blocks"], -1);
    assert!(v.get("tip").is_none());
    let chain = PeerChain {
        tip: rusty_shared_types::Hash256::default(),
        height: 42,
        chain_work: [0; 32],
        in_flight: vec![43, 44],
    };
    let v = peer_json(
        &PeerInfo {
            inbound: false,
            ping: None,
            ..info
        },
        Some(&chain),
        PeerActivity::default(),
        1_000,
    );
    assert_eq!(v["connection_type"], "outbound-full-relay");
    assert_eq!(v["relayed"], false);
    assert_eq!(v["synced_headers"], 42);
    assert_eq!(v["synced_blocks"], 42);
    assert_eq!(v["inflight"], json!([43, 44]));
    assert_eq!(v["startingheight"], 42);
    assert_eq!(v["version"], rusty_network::behaviour::PROTOCOL_VERSION);
    assert!(v.get("pingtime").is_none());
    assert!(v["tip"].is_string());

    let ban = BanInfo {
        target: BanTarget::Peer(p),
        created: 100,
        until: 200,
        reason: "manual ban (setban)".into(),
    };
    let v = ban_json(&ban, 150);
    assert_eq!(v["address"], p.to_string());
    assert_eq!(v["ban_duration"], 100);
    assert_eq!(v["time_remaining"], 50);
    assert_eq!(ban_json(&ban, 300)["time_remaining"], 0);

    let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().expect("static");
    let with = with_peer_id(&addr, p);
    assert_eq!(peer_id_of(&with), Some(p));
    assert_eq!(with_peer_id(&with, p), with);
}

/// Every method against real nodes: two connected over loopback, and
/// one without networking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_over_rpc() {
    use crate::{
        localnet::{LocalNet, LocalNetConfig},
        rpc::client::{ClientError, RpcClient},
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let net = LocalNet::start(LocalNetConfig::new(dir.path(), 2))
        .await
        .expect("localnet");
    let clients: Vec<RpcClient> = (0..2)
        .map(|i| {
            RpcClient::new(&net.rpc_url(i))
                .and_then(|c| c.with_cookie_file(net.cookie_path(i)))
                .expect("client")
        })
        .collect();
    let call = |i: usize, m: &str, params: Value| {
        let c = clients[i].clone();
        let m = m.to_owned();
        async move {
            tokio::task::spawn_blocking(move || c.call(&m, params))
                .await
                .expect("rpc thread")
        }
    };
    let err_code = |r: Result<Value, ClientError>| match r {
        Err(ClientError::Rpc { code, .. }) => code,
        other => panic!("expected an RPC error, got {other:?}"),
    };
    let (p0, p1) = (net.peer_id(0).expect("p2p"), net.peer_id(1).expect("p2p"));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while call(1, "getconnectioncount", json!([]))
        .await
        .expect("count")
        != json!(1)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nodes did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let info = call(0, "getnetworkinfo", json!([])).await.expect("info");
    assert_eq!(info["networkactive"], true);
    assert_eq!(info["peerid"], p0.to_string());
    assert_eq!(info["protocolversion"], 1);
    assert_eq!(info["protocol"], "/rusty/dev/1");
    assert_eq!(info["mdns"], false);
    let ip_port = &info["localaddresses"][0];
    assert_eq!(ip_port["address"], "127.0.0.1");
    assert!(ip_port["port"].as_u64().is_some_and(|p| p > 0), "{ip_port}");
    let local = info["localmultiaddrs"].as_array().expect("addresses");
    assert_eq!(local.len(), 1);
    assert!(
        local[0]
            .as_str()
            .expect("string")
            .ends_with(&format!("/p2p/{p0}")),
        "{local:?}"
    );

    let peers = call(1, "getpeerinfo", json!([])).await.expect("peers");
    let peer = &peers.as_array().expect("array")[0];
    assert_eq!(peer["peerid"], p0.to_string());
    assert_eq!(peer["connection_type"], "outbound-full-relay");
    assert_eq!(peer["persistent"], true, "a bootnode stays connected");
    assert!(peer["addr"]
        .as_str()
        .expect("addr")
        .starts_with("/ip4/127.0.0.1/tcp/"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let peers = loop {
        let peers = call(0, "getpeerinfo", json!([])).await.expect("peers");
        if peers.as_array().is_some_and(|a| !a.is_empty()) {
            break peers;
        }
        assert!(tokio::time::Instant::now() < deadline, "no inbound peer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(peers[0]["peerid"], p1.to_string());
    assert_eq!(peers[0]["inbound"], true);
    assert_eq!(peers[0]["last_block"], 0, "nothing received yet");

    // A block node 0 mines reaches node 1 from its peer: last_block is set.
    net.mine(0, 1).await.expect("mined");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let peers = call(1, "getpeerinfo", json!([])).await.expect("peers");
        if peers[0]["last_block"].as_u64().is_some_and(|t| t > 0) {
            assert_eq!(peers[0]["last_transaction"], 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 1 never noted a block from node 0: {peers}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Parameter errors.
    let stranger = PeerId::random().to_string();
    assert_eq!(
        err_code(call(0, "disconnectnode", json!([stranger])).await),
        i64::from(codes::CLIENT_NODE_NOT_CONNECTED)
    );
    assert_eq!(
        err_code(call(0, "addnode", json!(["nowhere", "add"])).await),
        i64::from(codes::INVALID_PARAMETER)
    );
    assert_eq!(
        err_code(call(0, "addnode", json!(["/ip4/127.0.0.1/tcp/1", "sometimes"])).await),
        i64::from(codes::INVALID_PARAMETER)
    );
    assert_eq!(
        err_code(call(0, "setban", json!(["nobody", "add"])).await),
        i64::from(codes::CLIENT_INVALID_IP_OR_SUBNET)
    );

    // Bans: add, add again, list, remove, remove again, clear.
    let p1s = p1.to_string();
    assert_eq!(
        call(0, "setban", json!([p1s, "add", 60]))
            .await
            .expect("ban"),
        Value::Null
    );
    assert_eq!(
        err_code(call(0, "setban", json!([p1s, "add"])).await),
        i64::from(codes::CLIENT_NODE_ALREADY_ADDED)
    );
    let bans = call(0, "listbanned", json!([])).await.expect("bans");
    assert_eq!(bans[0]["address"], p1s);
    assert_eq!(bans[0]["ban_duration"], 60);
    assert_eq!(bans[0]["reason"], "manual ban (setban)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while call(0, "getconnectioncount", json!([]))
        .await
        .expect("count")
        != json!(0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "banned peer still connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        call(0, "setban", json!([p1s, "remove"]))
            .await
            .expect("unban"),
        Value::Null
    );
    assert_eq!(
        err_code(call(0, "setban", json!([p1s, "remove"])).await),
        i64::from(codes::CLIENT_INVALID_IP_OR_SUBNET)
    );
    call(0, "setban", json!(["192.0.2.1", "add"]))
        .await
        .expect("ip ban");
    assert_eq!(
        call(0, "clearbanned", json!([])).await.expect("clear"),
        Value::Null
    );
    assert_eq!(
        call(0, "listbanned", json!([])).await.expect("bans"),
        json!([])
    );

    // addnode brings the peer back; disconnectnode by address drops it.
    let addr1 = net.listen_addrs(1)[0].to_string();
    assert_eq!(
        call(0, "addnode", json!([addr1, "add"]))
            .await
            .expect("addnode"),
        Value::Null
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while call(0, "getconnectioncount", json!([]))
        .await
        .expect("count")
        == json!(0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "addnode did not connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        call(0, "disconnectnode", json!([p1s]))
            .await
            .expect("disconnect"),
        Value::Null
    );

    // A node without networking.
    let mut c = net.config().node_config(5, Vec::new()).expect("config");
    c.p2p = None;
    let alone = crate::node::Node::start(c).await.expect("node");
    let client = RpcClient::new(&format!("http://{}", alone.rpc_addr()))
        .and_then(|c| c.with_cookie_file(alone.cookie_path().expect("cookie")))
        .expect("client");
    let call_alone = |m: &'static str| {
        let c = client.clone();
        async move {
            tokio::task::spawn_blocking(move || c.call(m, json!([])))
                .await
                .expect("rpc thread")
        }
    };
    let info = call_alone("getnetworkinfo").await.expect("info");
    assert_eq!(info["networkactive"], false);
    assert_eq!(info["connections"], 0);
    assert!(info.get("peerid").is_none());
    assert_eq!(
        call_alone("getconnectioncount").await.expect("count"),
        json!(0)
    );
    for m in ["getpeerinfo", "listbanned", "clearbanned"] {
        assert_eq!(
            err_code(call_alone(m).await),
            i64::from(codes::CLIENT_P2P_DISABLED),
            "{m}"
        );
    }
    alone.shutdown().await;
    net.shutdown().await;
}
