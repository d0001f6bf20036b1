//! Two network tasks on real loopback sockets: a request-response round trip
//! over QUIC and over TCP (Noise + Yamux), and a gossip message delivered
//! and validated.

use std::time::Duration;

use rusty_network::{
    Acceptance, NetworkConfig, NetworkEvent, NetworkEvents, NetworkHandle, Request, Response,
    Status, Topic,
};
use rusty_shared_types::Hash256;

async fn peer(
    listen: &str,
    bootnodes: Vec<rusty_network::Multiaddr>,
) -> (NetworkHandle, NetworkEvents) {
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec![listen.parse().expect("multiaddr")];
    cfg.mdns = false;
    cfg.bootnodes = bootnodes;
    rusty_network::start(cfg).await.expect("network starts")
}

fn status(height: u64) -> Status {
    Status {
        genesis: Hash256::ZERO,
        tip: Hash256::ZERO,
        height,
        chain_work: [0; 32],
        best_chainlock: None,
    }
}

/// Answers status requests with height 7 and accepts gossip, forever.
fn serve(
    handle: NetworkHandle,
    mut events: NetworkEvents,
) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::Request { responder, .. } => {
                    handle.respond(responder, Response::Status(status(7))).await
                }
                NetworkEvent::Gossip {
                    id, source, data, ..
                } => {
                    handle.validate(id, source, Acceptance::Accept);
                    let _ = tx.send(data);
                }
                _ => {}
            }
        }
    });
    rx
}

async fn round_trip(listen: &str) {
    let (server, server_events) = peer(listen, Vec::new()).await;
    let mut gossip = serve(server.clone(), server_events);
    let (client, _client_events) = peer(listen, server.listen_addrs()).await;
    // The client dials its bootnode on its own; retry until connected.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match client
            .request(server.peer_id(), Request::Status(status(1)))
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "{listen}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(reply, Response::Status(status(7)));
    let peers = client.peers().await.expect("peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, server.peer_id());
    // Gossip reaches the server once the subscriptions are known.
    let got = loop {
        let _ = client.publish(Topic::Txs, b"a transaction".to_vec()).await;
        match tokio::time::timeout(Duration::from_millis(300), gossip.recv()).await {
            Ok(Some(data)) => break data,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "{listen}: no gossip"
            ),
        }
    };
    assert_eq!(got, b"a transaction");
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_and_gossip_over_quic() {
    round_trip("/ip4/127.0.0.1/udp/0/quic-v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_and_gossip_over_tcp() {
    round_trip("/ip4/127.0.0.1/tcp/0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootnode_given_by_dns_name_is_resolved_and_connected() {
    use rusty_network::multiaddr::Protocol;
    let (server, server_events) = peer("/ip4/127.0.0.1/tcp/0", Vec::new()).await;
    let _gossip = serve(server.clone(), server_events);
    // /ip4/127.0.0.1/tcp/N → /dns4/localhost/tcp/N/p2p/<id>
    let port = server
        .listen_addrs()
        .iter()
        .flat_map(|a| a.iter())
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp port");
    let by_name: rusty_network::Multiaddr =
        format!("/dns4/localhost/tcp/{port}/p2p/{}", server.peer_id())
            .parse()
            .expect("multiaddr");
    let (client, _events) = peer("/ip4/127.0.0.1/tcp/0", vec![by_name]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client.peers().await.expect("peers").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never connected to localhost by name"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peers = client.peers().await.expect("peers");
    assert_eq!(peers[0].peer_id, server.peer_id());
    assert!(!peers[0].relayed);
    client.shutdown().await;
    server.shutdown().await;
}
