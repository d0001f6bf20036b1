//! The media transport: three network tasks on loopback TCP in a line
//! A — B — C (A and C only know B, no mDNS). A provides a key in the DHT, C
//! finds A through B and fetches from it over the `media` protocol, also
//! after dropping its connection to A; gossip on the `media` topic from A
//! reaches C with A as its author. And the codec bounds media frames.

use std::time::Duration;

use futures::io::Cursor;
use libp2p::request_response::Codec;
use rusty_network::{
    codec::{SyncCodec, SyncProtocol},
    message::Protocol,
    Acceptance, Multiaddr, NetworkConfig, NetworkEvent, NetworkEvents, NetworkHandle, PeerId,
    Request, Response, Topic, MAX_MEDIA_REQUEST, MAX_MEDIA_RESPONSE,
};
use tokio::{
    sync::mpsc,
    time::{timeout_at, Instant},
};

/// What a node's event loop saw.
#[derive(Debug)]
enum Seen {
    Connected(PeerId),
    Disconnected(PeerId),
    Gossip {
        topic: Topic,
        source: PeerId,
        author: Option<PeerId>,
        data: Vec<u8>,
    },
    Media {
        peer: PeerId,
        body: Vec<u8>,
    },
}

async fn node(bootnodes: Vec<Multiaddr>) -> (NetworkHandle, mpsc::UnboundedReceiver<Seen>) {
    let mut cfg = NetworkConfig::new("dev", None, 0);
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    cfg.mdns = false;
    cfg.bootnodes = bootnodes;
    let (handle, events) = rusty_network::start(cfg).await.expect("network starts");
    let seen = serve(handle.clone(), events);
    (handle, seen)
}

/// The node side of a test peer: answers every media request with
/// `media:` and the request's body, accepts (forwards) every gossip
/// message, and reports what it saw.
fn serve(handle: NetworkHandle, mut events: NetworkEvents) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::PeerConnected { peer, .. } => {
                    let _ = tx.send(Seen::Connected(peer));
                }
                NetworkEvent::PeerDisconnected { peer } => {
                    let _ = tx.send(Seen::Disconnected(peer));
                }
                NetworkEvent::Gossip {
                    topic,
                    source,
                    author,
                    id,
                    data,
                } => {
                    handle.validate(id, source, Acceptance::Accept);
                    let _ = tx.send(Seen::Gossip {
                        topic,
                        source,
                        author,
                        data,
                    });
                }
                NetworkEvent::Request {
                    peer,
                    request: Request::Media(body),
                    responder,
                } => {
                    let reply = [b"media:".as_slice(), &body].concat();
                    let _ = tx.send(Seen::Media { peer, body });
                    handle.respond(responder, Response::Media(reply)).await;
                }
                _ => {}
            }
        }
    });
    rx
}

/// The first event matching `want` before `deadline`.
async fn wait_for<T>(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    deadline: Instant,
    mut want: impl FnMut(Seen) -> Option<T>,
) -> Option<T> {
    loop {
        match timeout_at(deadline, seen.recv()).await {
            Ok(Some(ev)) => {
                if let Some(t) = want(ev) {
                    return Some(t);
                }
            }
            Ok(None) | Err(_) => return None,
        }
    }
}

/// B, then A and C each with B as their only bootnode; returns once A and
/// C are connected to B.
async fn line() -> [(NetworkHandle, mpsc::UnboundedReceiver<Seen>); 3] {
    let (b, b_seen) = node(Vec::new()).await;
    let (a, mut a_seen) = node(b.listen_addrs()).await;
    let (c, mut c_seen) = node(b.listen_addrs()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let b_id = b.peer_id();
    for seen in [&mut a_seen, &mut c_seen] {
        wait_for(seen, deadline, |ev| {
            matches!(ev, Seen::Connected(p) if p == b_id).then_some(())
        })
        .await
        .expect("connected to B");
    }
    [(a, a_seen), (b, b_seen), (c, c_seen)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_found_through_the_dht_and_answers_media_requests() {
    let [(a, mut a_seen), (b, _b_seen), (c, mut c_seen)] = line().await;
    let key = b"content id 0123456789abcdef".to_vec();
    a.start_providing(key.clone()).await.expect("provides");

    // The record reaches B once A's routing table has it (identify runs
    // first); C asks until B has it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let providers = loop {
        let found = c
            .get_providers(key.clone(), Duration::from_secs(2))
            .await
            .expect("lookup");
        assert!(!found.contains(&c.peer_id()), "the local peer is excluded");
        if found.contains(&a.peer_id()) || Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(providers.contains(&a.peer_id()), "found {providers:?}");
    // Each provider once, however many peers named it.
    let mut unique = providers.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), providers.len());

    // The lookup may have connected C to A (Kademlia asks the providers it
    // learns of too), and A, having learned of C, may dial it on its own;
    // drop that, so the request has to dial A. A connection racing with the
    // disconnect survives it (and `peers` lists it again): disconnect again.
    let a_id = a.peer_id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .peers()
        .await
        .expect("peers")
        .iter()
        .any(|p| p.peer_id == a_id)
    {
        assert!(Instant::now() < deadline, "C stays connected to A");
        // Only a disconnection after this one counts.
        while c_seen.try_recv().is_ok() {}
        c.disconnect(a_id).await.expect("disconnect");
        // Closed for good (`peers` drops it as soon as it is closing).
        let step = (Instant::now() + Duration::from_secs(3)).min(deadline);
        wait_for(&mut c_seen, step, |ev| {
            matches!(ev, Seen::Disconnected(p) if p == a_id).then_some(())
        })
        .await;
    }

    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        c.request(a.peer_id(), Request::Media(b"chunk 7".to_vec())),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    assert_eq!(reply, Response::Media(b"media:chunk 7".to_vec()));
    let deadline = Instant::now() + Duration::from_secs(2);
    let from = wait_for(&mut a_seen, deadline, |ev| match ev {
        Seen::Media { peer, body } if body == b"chunk 7" => Some(peer),
        _ => None,
    })
    .await
    .expect("A saw the request");
    assert_eq!(from, c.peer_id());

    // Nobody provides another key: an empty answer, well within the
    // timeout on so small a network.
    let started = Instant::now();
    let none = c
        .get_providers(b"nobody has this".to_vec(), Duration::from_secs(3))
        .await
        .expect("lookup");
    assert!(none.is_empty(), "{none:?}");
    assert!(started.elapsed() <= Duration::from_millis(3_500));

    // A request body over the cap fails locally.
    let err = c
        .request(a.peer_id(), Request::Media(vec![0; MAX_MEDIA_REQUEST + 1]))
        .await
        .expect_err("oversize");
    assert!(
        matches!(err, rusty_network::RequestError::Other(_)),
        "{err:?}"
    );

    a.stop_providing(key).await;
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_gossip_reaches_the_far_end_with_its_author() {
    let [(a, _a_seen), (b, mut b_seen), (c, mut c_seen)] = line().await;
    let a_id = a.peer_id();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut n = 0u32;
    // Meshes form on the gossip heartbeat: announce until C hears one
    // (each announcement differs, since equal data is one message).
    let (source, author) = loop {
        assert!(Instant::now() < deadline, "no media gossip reached C");
        n += 1;
        a.publish(Topic::Media, format!("I have content {n}").into_bytes())
            .await
            .expect("queued");
        let step = (Instant::now() + Duration::from_millis(400)).min(deadline);
        if let Some(got) = wait_for(&mut c_seen, step, |ev| match ev {
            Seen::Gossip {
                topic: Topic::Media,
                source,
                author,
                data,
            } if data.starts_with(b"I have content ") => Some((source, author)),
            _ => None,
        })
        .await
        {
            break got;
        }
    };
    assert_eq!(author, Some(a_id));
    // Forwarded by B, or sent by A directly if discovery connected them.
    assert!(source == b.peer_id() || source == a_id, "source {source}");

    // B, a direct neighbour, saw A as the author; the copy came from A, or
    // from C when discovery connected A and C and C's copy arrived first
    // (gossipsub delivers each message once).
    let deadline = Instant::now() + Duration::from_secs(2);
    let (b_source, b_author) = wait_for(&mut b_seen, deadline, |ev| match ev {
        Seen::Gossip {
            topic: Topic::Media,
            source,
            author,
            ..
        } => Some((source, author)),
        _ => None,
    })
    .await
    .expect("B saw it");
    assert_eq!(b_author, Some(a_id));
    assert!(
        b_source == a_id || b_source == c.peer_id(),
        "B's copy came from {b_source}"
    );

    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[test]
fn media_frames_are_bounded_and_a_large_reply_round_trips() {
    futures::executor::block_on(async {
        let p = SyncProtocol::new("dev", Protocol::Media);
        assert_eq!(p.as_ref(), "/rusty/dev/media/1");
        let mut codec = SyncCodec {
            max_block_size: 1000,
        };

        // A request frame claiming more than the cap: refused on its
        // length, before any body.
        let len = u32::try_from(MAX_MEDIA_REQUEST + 1).expect("fits");
        let err = codec
            .read_request(&p, &mut Cursor::new(len.to_be_bytes().to_vec()))
            .await
            .expect_err("over the request cap");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // Likewise a response frame.
        let len = u32::try_from(MAX_MEDIA_RESPONSE + 1).expect("fits");
        let err = codec
            .read_response(&p, &mut Cursor::new(len.to_be_bytes().to_vec()))
            .await
            .expect_err("over the response cap");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

        // The writer refuses to send either.
        let mut out = Cursor::new(Vec::new());
        let err = codec
            .write_request(&p, &mut out, Request::Media(vec![0; MAX_MEDIA_REQUEST + 1]))
            .await
            .expect_err("over the request cap");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(out.into_inner().is_empty());

        // A request at the cap and a 1 MiB reply (16 chunks of 64 KiB) go
        // through, byte for byte.
        let req = Request::Media(vec![0x42; MAX_MEDIA_REQUEST]);
        let mut out = Cursor::new(Vec::new());
        codec
            .write_request(&p, &mut out, req.clone())
            .await
            .expect("within the cap");
        let frame = out.into_inner();
        assert_eq!(frame.len(), 4 + MAX_MEDIA_REQUEST);
        let got = codec
            .read_request(&p, &mut Cursor::new(frame))
            .await
            .expect("decodes");
        assert_eq!(got, req);

        let body: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
        let resp = Response::Media(body);
        let mut out = Cursor::new(Vec::new());
        codec
            .write_response(&p, &mut out, resp.clone())
            .await
            .expect("within the cap");
        let got = codec
            .read_response(&p, &mut Cursor::new(out.into_inner()))
            .await
            .expect("decodes");
        assert_eq!(got, resp);

        // A response cut short is an error, not a shorter body.
        let mut out = Cursor::new(Vec::new());
        codec
            .write_response(&p, &mut out, resp)
            .await
            .expect("within the cap");
        let mut cut = out.into_inner();
        cut.truncate(cut.len() - 1);
        assert!(codec
            .read_response(&p, &mut Cursor::new(cut))
            .await
            .is_err());

        // A response of another protocol on this one is refused.
        let mut out = Cursor::new(Vec::new());
        let err = codec
            .write_response(&p, &mut out, Response::Headers(Vec::new()))
            .await
            .expect_err("wrong protocol");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}
