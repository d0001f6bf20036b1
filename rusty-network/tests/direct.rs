//! The `direct` protocol: two network tasks on loopback TCP, the requester
//! knowing the responder only through `NetworkHandle::add_address` (no
//! bootnode, no `addnode`, no mDNS), exchange a message and its ack; and
//! frames over the protocol's cap are refused by the codec.

use std::time::Duration;

use futures::io::Cursor;
use libp2p::request_response::Codec;
use rusty_network::{
    codec::{SyncCodec, SyncProtocol},
    message::Protocol,
    DirectAck, DirectMessage, NetworkConfig, NetworkEvent, NetworkEvents, NetworkHandle, Request,
    RequestError, Response, MAX_DIRECT_BODY,
};

async fn node() -> (NetworkHandle, NetworkEvents) {
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    cfg.mdns = false;
    rusty_network::start(cfg).await.expect("network starts")
}

/// Acks every direct message `Duplicate` and hands it over; answers
/// nothing else.
fn serve_direct(
    handle: NetworkHandle,
    mut events: NetworkEvents,
) -> tokio::sync::mpsc::UnboundedReceiver<(rusty_network::PeerId, DirectMessage)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let NetworkEvent::Request {
                peer,
                request: Request::Direct(msg),
                responder,
            } = ev
            {
                let _ = tx.send((peer, msg));
                handle
                    .respond(responder, Response::Direct(DirectAck::Duplicate))
                    .await;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_reaches_a_peer_known_only_by_add_address() {
    let (responder, responder_events) = node().await;
    let mut received = serve_direct(responder.clone(), responder_events);
    let (requester, _requester_events) = node().await;

    let msg = DirectMessage {
        kind: 3,
        body: vec![0x5a; 64 * 1024],
    };
    // Without an address the request cannot dial.
    let err = requester
        .request(responder.peer_id(), Request::Direct(msg.clone()))
        .await
        .expect_err("no address to dial");
    assert_ne!(err, RequestError::Stopped);
    assert!(requester.peers().await.expect("peers").is_empty());

    for addr in responder.listen_addrs() {
        requester.add_address(responder.peer_id(), addr).await;
    }
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        requester.request(responder.peer_id(), Request::Direct(msg.clone())),
    )
    .await
    .expect("answered in time")
    .expect("acknowledged");
    assert_eq!(reply, Response::Direct(DirectAck::Duplicate));

    let (from, got) = received.recv().await.expect("delivered");
    assert_eq!(from, requester.peer_id());
    assert_eq!(got, msg);

    // Connected by the request, but not made a persistent peer.
    let peers = requester.peers().await.expect("peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, responder.peer_id());
    assert!(!peers[0].inbound);
    assert!(!peers[0].persistent);

    // A body over the cap is refused by the sender's codec: the request
    // fails locally and the responder never sees it.
    let over = DirectMessage {
        kind: 3,
        body: vec![0; MAX_DIRECT_BODY + 1],
    };
    let err = requester
        .request(responder.peer_id(), Request::Direct(over))
        .await
        .expect_err("oversize");
    assert!(matches!(err, RequestError::Other(_)), "{err:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), received.recv())
            .await
            .is_err(),
        "an oversize message was delivered"
    );

    requester.shutdown().await;
    responder.shutdown().await;
}

#[test]
fn an_oversize_direct_frame_is_rejected_by_the_codec() {
    futures::executor::block_on(async {
        let p = SyncProtocol::new("dev", Protocol::Direct);
        assert_eq!(p.as_ref(), "/rusty/dev/direct/1");
        let mut codec = SyncCodec {
            max_block_size: 1000,
        };

        // A frame whose 4-byte length exceeds the cap: refused before the
        // body is read (there is none here to read).
        let len = u32::try_from(Protocol::Direct.max_request() + 1).expect("fits");
        let err = codec
            .read_request(&p, &mut Cursor::new(len.to_be_bytes().to_vec()))
            .await
            .expect_err("over the frame cap");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

        // A frame within the cap whose body claims more than
        // MAX_DIRECT_BODY bytes: refused by the decoder.
        let mut body = vec![1, 0xfe];
        body.extend_from_slice(
            &u32::try_from(MAX_DIRECT_BODY + 1)
                .expect("fits")
                .to_le_bytes(),
        );
        let mut frame = u32::try_from(body.len())
            .expect("fits")
            .to_be_bytes()
            .to_vec();
        frame.extend_from_slice(&body);
        let err = codec
            .read_request(&p, &mut Cursor::new(frame))
            .await
            .expect_err("body over its cap");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

        // The writer refuses to send one.
        let over = Request::Direct(DirectMessage {
            kind: 1,
            body: vec![0; MAX_DIRECT_BODY + 1],
        });
        let mut out = Cursor::new(Vec::new());
        let err = codec
            .write_request(&p, &mut out, over)
            .await
            .expect_err("over the cap");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(out.into_inner().is_empty());

        // A one-byte ack with an unknown tag is malformed.
        let err = codec
            .read_response(&p, &mut Cursor::new(vec![0, 0, 0, 1, 9]))
            .await
            .expect_err("unknown ack");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

        // The largest message goes through.
        let full = Request::Direct(DirectMessage {
            kind: 1,
            body: vec![7; MAX_DIRECT_BODY],
        });
        let mut out = Cursor::new(Vec::new());
        codec
            .write_request(&p, &mut out, full.clone())
            .await
            .expect("within the cap");
        let got = codec
            .read_request(&p, &mut Cursor::new(out.into_inner()))
            .await
            .expect("decodes");
        assert_eq!(got, full);
    });
}
