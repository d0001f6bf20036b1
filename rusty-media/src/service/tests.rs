use std::time::{Duration, Instant};

use rusty_network::PeerId;
use rusty_shared_types::Hash256;

use super::book::{ProviderBook, UploadLimiter, MAX_PROVIDERS_PER_ITEM};

#[test]
fn the_upload_limiter_paces_and_refuses_long_waits() {
    let t0 = Instant::now();
    let mut l = UploadLimiter::new(1 << 20, t0);
    // The burst (1 MiB) goes at once.
    assert_eq!(l.reserve(1 << 20, t0), Some(Duration::ZERO));
    // The next MiB waits about a second.
    let w = l.reserve(1 << 20, t0).expect("within the wait cap");
    assert!(w > Duration::from_millis(900) && w <= Duration::from_millis(1000));
    // A third would wait two seconds: still allowed; a fourth is not.
    assert!(l.reserve(1 << 20, t0).is_some());
    assert_eq!(l.reserve(1 << 20, t0), None);
    // Time refills.
    let later = t0 + Duration::from_secs(10);
    assert_eq!(l.reserve(1 << 20, later), Some(Duration::ZERO));
    // No limit: never waits.
    let mut free = UploadLimiter::new(0, t0);
    assert_eq!(free.reserve(u64::MAX, t0), Some(Duration::ZERO));
}

#[test]
fn a_changed_upload_rate_keeps_the_tokens_earned_and_paces_at_once() {
    let t0 = Instant::now();
    let mut l = UploadLimiter::new(4 << 20, t0);
    // Empty the 4 MiB bucket, then drop to 1 MiB/s half a second later:
    // the 2 MiB earned at the old rate stay, capped by the new burst.
    assert_eq!(l.reserve(4 << 20, t0), Some(Duration::ZERO));
    let t1 = t0 + Duration::from_millis(500);
    l.set_rate(1 << 20, t1);
    assert_eq!(l.reserve(1 << 20, t1), Some(Duration::ZERO));
    // The next MiB waits a second at the new rate, not a quarter.
    let w = l.reserve(1 << 20, t1).expect("within the wait cap");
    assert!(
        w > Duration::from_millis(900) && w <= Duration::from_millis(1000),
        "{w:?}"
    );
    // Off: never waits; on again: an empty bucket, pacing at once.
    l.set_rate(0, t1);
    assert_eq!(l.reserve(u64::MAX, t1), Some(Duration::ZERO));
    l.set_rate(1 << 20, t1);
    let w = l.reserve(1 << 19, t1).expect("allowed");
    assert!(
        w > Duration::from_millis(450) && w <= Duration::from_millis(500),
        "{w:?}"
    );
}

#[test]
fn the_provider_book_is_bounded_and_most_recent_first() {
    let mut b = ProviderBook::default();
    let id = Hash256([1; 32]);
    let t0 = Instant::now();
    let peers: Vec<PeerId> = (0..MAX_PROVIDERS_PER_ITEM + 5)
        .map(|_| PeerId::random())
        .collect();
    for (i, p) in peers.iter().enumerate() {
        b.add(id, *p, t0 + Duration::from_millis(i as u64));
    }
    let got = b.get(&id);
    assert_eq!(got.len(), MAX_PROVIDERS_PER_ITEM);
    assert_eq!(got[0], *peers.last().expect("peers"));
    // The five oldest were forgotten.
    assert!(!got.contains(&peers[0]));
    b.remove(&id, &got[0]);
    assert_eq!(b.get(&id).len(), MAX_PROVIDERS_PER_ITEM - 1);
}

// ---- the media task over a real network (two nodes on loopback) ----------

mod two_nodes {
    use std::{sync::Arc, time::Duration};

    use rusty_crypto::ed25519::SecretKey;
    use rusty_network::{NetworkConfig, NetworkEvent, NetworkEvents, Request, Topic};
    use rusty_shared_types::Hash256;

    use crate::{
        downloader::{Download, DownloadState},
        http::PlaybackSource,
        manifest::ManifestFields,
        service::{MediaError, MediaHandle, MediaSource},
        store::ContentStore,
    };

    const TIMEOUT: Duration = Duration::from_secs(30);

    struct Node {
        media: MediaHandle,
        task: tokio::task::JoinHandle<()>,
        _dir: tempfile::TempDir,
    }

    /// A network task and a media service on it, wired as the node wires
    /// them: gossip and media requests go to the service.
    async fn node(bootnodes: Vec<rusty_network::Multiaddr>, upload_limit: u64) -> Node {
        node_with(bootnodes, upload_limit, false).await
    }

    /// [`node`], serving a direct data channel on loopback when
    /// `data_channel`.
    async fn node_with(
        bootnodes: Vec<rusty_network::Multiaddr>,
        upload_limit: u64,
        data_channel: bool,
    ) -> Node {
        let listener = data_channel
            .then(|| std::net::TcpListener::bind("127.0.0.1:0").expect("data channel binds"));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = NetworkConfig::new("dev", None, 0);
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
        cfg.mdns = false;
        cfg.bootnodes = bootnodes;
        let (net, events) = rusty_network::start(cfg).await.expect("network starts");
        let store = ContentStore::open(dir.path(), 1 << 30).expect("store");
        let (media, task) = MediaHandle::new_task(
            Arc::new(store),
            SecretKey::generate(),
            net,
            upload_limit,
            Some(dir.path().join(super::super::KEYS_DIR)),
            listener,
        );
        let task = tokio::spawn(task);
        route(media.clone(), events);
        Node {
            media,
            task,
            _dir: dir,
        }
    }

    fn route(media: MediaHandle, mut events: NetworkEvents) {
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                match ev {
                    NetworkEvent::Gossip {
                        topic: Topic::Media,
                        source,
                        author,
                        id,
                        data,
                    } => media.on_gossip(source, author, id, &data),
                    NetworkEvent::Request {
                        peer,
                        request: Request::Media(body),
                        responder,
                    } => media.on_request(peer, body, responder),
                    _ => {}
                }
            }
        });
    }

    /// A, serving under an upload limit (its replies wait on the task's
    /// token bucket), and B connected to it.
    async fn pair() -> (Node, Node) {
        pair_with(false, false).await
    }

    /// [`pair`], each with a data channel or not.
    async fn pair_with(a_channel: bool, b_channel: bool) -> (Node, Node) {
        pair_limited(4 << 20, a_channel, b_channel).await
    }

    /// [`pair_with`], A uploading at most `a_limit` bytes a second (0: no
    /// limit).
    async fn pair_limited(a_limit: u64, a_channel: bool, b_channel: bool) -> (Node, Node) {
        let a = node_with(Vec::new(), a_limit, a_channel).await;
        let b = node_with(a.media.shared.net.listen_addrs(), 0, b_channel).await;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while b
            .media
            .shared
            .net
            .peers()
            .await
            .map(|p| p.len())
            .unwrap_or(0)
            == 0
        {
            assert!(tokio::time::Instant::now() < deadline, "B connects to A");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (a, b)
    }

    /// Stops a node as the node does: the service, then the network (whose
    /// event loop holds a handle), then waits for every task to let go.
    async fn shut_down(n: Node) {
        n.media.stop();
        n.media.shared.net.shutdown().await;
        let shared = Arc::downgrade(&n.media.shared);
        let started = tokio::time::Instant::now();
        n.media.stop_and_wait(TIMEOUT).await;
        assert!(started.elapsed() < TIMEOUT, "every task let go in time");
        assert_eq!(shared.strong_count(), 0, "the store is closed");
    }

    fn fields(title: &str) -> ManifestFields {
        ManifestFields {
            title: title.into(),
            mime: "application/octet-stream".into(),
            ..ManifestFields::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_published_on_one_node_downloads_on_another() {
        let (a, mut b) = pair().await;
        let data: Vec<u8> = (0..(1 << 20) + 12_345).map(|i| (i % 251) as u8).collect();
        let id = a
            .media
            .publish_bytes(data.clone(), fields("two nodes"))
            .await
            .expect("published");

        let d = b.media.download(id).await;
        // Joining a running download returns the same one.
        assert!(Arc::ptr_eq(&d, &b.media.download(id).await));
        completes_intact(&b, &d, id, &data).await;
        assert!(b.media.providers(&id).await.contains(&a.media.peer_id()));
        assert_eq!(b.media.downloads().await.len(), 1);
        assert!(b.media.download_status(&id).await.is_some());
        assert!(a.media.stats().served_requests > 0);

        // Stopping ends the task; afterwards the service answers as
        // stopped instead of hanging.
        b.media.stop();
        tokio::time::timeout(TIMEOUT, &mut b.task)
            .await
            .expect("the task ends on stop")
            .expect("no panic");
        let after = b.media.download(Hash256([9; 32])).await;
        assert_eq!(after.status().state, DownloadState::Cancelled);
        assert!(b.media.providers(&id).await.is_empty());
        assert!(b.media.content_key(&Hash256([9; 32])).await.is_none());
        shut_down(b).await;
        shut_down(a).await;
    }

    /// Content that left the store after its download completed (evicted
    /// from the cache, as here by hand, or a chunk corrupted on disk) is
    /// fetched again when it is read or downloaded: the finished download
    /// of before is not handed out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn content_gone_from_the_store_is_fetched_again() {
        let (a, b) = pair().await;
        let data: Vec<u8> = (0..(1 << 20) + 777).map(|i| (i % 241) as u8).collect();
        let id = a
            .media
            .publish_bytes(data.clone(), fields("evicted"))
            .await
            .expect("published");
        let first = b.media.download(id).await;
        completes_intact(&b, &first, id, &data).await;

        assert!(b.media.store().remove(&id).expect("removed"));
        let got = b
            .media
            .read(id, 0, data.len() as u64, TIMEOUT)
            .await
            .expect("read after the content left the store");
        assert!(got == data, "the bytes arrive again, intact");
        assert!(b.media.store().is_complete(&id).expect("in the catalog"));

        assert!(b.media.store().remove(&id).expect("removed again"));
        let again = b.media.download(id).await;
        assert!(
            !Arc::ptr_eq(&first, &again),
            "a new download, not the old one"
        );
        completes_intact(&b, &again, id, &data).await;

        // A chunk found corrupt on disk by a read is fetched again too.
        let path = b.media.store().content_path(&id);
        let mut bytes = std::fs::read(&path).expect("content file");
        bytes[10] ^= 0xff;
        std::fs::write(&path, &bytes).expect("corrupted");
        let got = b
            .media
            .read(id, 0, data.len() as u64, TIMEOUT)
            .await
            .expect("read past a corrupt chunk");
        assert!(got == data, "the chunk arrives again, intact");

        // A sparse reader (as a ladder's rendition is read) whose chunks
        // leave the store while its download still runs gets them again.
        let sparse: Vec<u8> = (0..(1 << 20) + 999).map(|i| (i % 239) as u8).collect();
        let id = a
            .media
            .publish_bytes(sparse.clone(), fields("sparse"))
            .await
            .expect("published");
        let head = b
            .media
            .read_sparse(id, 0, 1_000, TIMEOUT)
            .await
            .expect("read");
        assert!(head == sparse[..1_000]);
        assert!(b.media.store().remove(&id).expect("removed"));
        let head = b
            .media
            .read_sparse(id, 0, 1_000, TIMEOUT)
            .await
            .expect("read after the chunks left the store");
        assert!(head == sparse[..1_000], "the chunks arrive again, intact");
        shut_down(b).await;
        shut_down(a).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_live_stream_reaches_a_viewer_in_order() {
        let (a, b) = pair().await;
        let id = a
            .media
            .broadcast_start(fields("live"))
            .await
            .expect("broadcast");
        // Two viewers racing to start the watch share one stream (one
        // task).
        let (stream, racer) = tokio::time::timeout(
            TIMEOUT,
            futures::future::join(b.media.watch(id), b.media.watch(id)),
        )
        .await
        .expect("in time");
        let stream = stream.expect("watching");
        assert!(stream.same_stream(&racer.expect("watching")));
        assert_eq!(b.media.live_streams().await.len(), 1);
        // Watching again joins the same stream.
        assert!(stream.same_stream(&b.media.watch(id).await.expect("joined")));
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut played = Vec::new();
        let mut n: u8 = 0;
        while played.len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "segments arrive");
            a.media
                .broadcast_push(id, &[n; 4096])
                .await
                .expect("pushed");
            n = n.wrapping_add(1);
            played = stream.wait_played(0, 16, Duration::from_millis(100)).await;
        }
        let seqs: Vec<u64> = played.iter().map(|p| p.seq).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "in order");
        // The broadcaster's playlist is open while it is live, and says
        // the end once it ended.
        let source = MediaSource {
            media: a.media.clone(),
            id,
        };
        let live = source.live_window().await.expect("window");
        assert!(!live.segments.is_empty() && !live.ended, "{live:?}");
        a.media.broadcast_end(id).await.expect("ended");
        let ended = source.live_window().await.expect("window");
        assert!(ended.ended, "{ended:?}");
        assert_eq!(ended.segments.first(), live.segments.first());
        assert!(ended.longest_ms > 0, "{ended:?}");
        let playlist = crate::http::hls_playlist(&ended).expect("playlist");
        assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
        drop(source); // its handle would keep the service from closing
        assert!(matches!(
            a.media.broadcast_push(id, b"late").await,
            Err(MediaError::Ended(_))
        ));
        assert!(b.media.unwatch(&id).await);
        assert!(!b.media.unwatch(&id).await);
        assert!(stream.is_ended());
        shut_down(a).await;
        shut_down(b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn content_keys_are_kept_and_found_again() {
        let a = node(Vec::new(), 0).await;
        let id = Hash256([3; 32]);
        assert!(a.media.content_key(&id).await.is_none());
        let key = crate::crypt::ContentKey::generate();
        a.media.set_content_key(&id, &key).await.expect("kept");
        assert_eq!(a.media.content_key(&id).await.map(|k| k.0), Some(key.0));
        // A new run (a new task, nothing in memory) finds it in its file.
        let (again, task) = MediaHandle::new_task(
            a.media.store().clone(),
            SecretKey::generate(),
            a.media.shared.net.clone(),
            0,
            Some(a._dir.path().join(super::super::KEYS_DIR)),
            None,
        );
        tokio::spawn(task);
        assert_eq!(again.content_key(&id).await.map(|k| k.0), Some(key.0));
        again.stop();
        drop(again);
        shut_down(a).await;
    }

    // ---- the direct data channel ----------------------------------------

    /// Publishes `len` bytes on A, downloads them on B; returns them.
    async fn download_between(a: &Node, b: &Node, len: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let id = a
            .media
            .publish_bytes(data.clone(), fields("direct"))
            .await
            .expect("published");
        let d = b.media.download(id).await;
        completes_intact(b, &d, id, &data).await;
        data
    }

    /// Waits for `d` on `b` to complete and checks that `b` reads `data`
    /// back.
    async fn completes_intact(b: &Node, d: &Download, id: Hash256, data: &[u8]) {
        let status = tokio::time::timeout(TIMEOUT, d.finished())
            .await
            .expect("finishes in time");
        assert_eq!(status.state, DownloadState::Complete, "{status:?}");
        let got = b
            .media
            .read(id, 0, data.len() as u64, TIMEOUT)
            .await
            .expect("read");
        assert!(got == data, "the bytes arrive intact");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_download_goes_over_the_data_channel_when_the_provider_serves_one() {
        let (a, b) = pair_with(true, true).await;
        // The first window of ranges goes over libp2p while the channel
        // opens (4 MiB); the rest goes direct.
        let data = download_between(&a, &b, (8 << 20) + 777).await;
        let (sa, sb) = (a.media.stats(), b.media.stats());
        assert!(sb.direct_downloaded_bytes > 0, "{sb:?}");
        assert!(sb.direct_downloaded_bytes <= data.len() as u64);
        assert_eq!(sb.downloaded_bytes, data.len() as u64);
        // Upload accounting is the same on both paths.
        assert!(
            sa.direct_uploaded_bytes >= sb.direct_downloaded_bytes,
            "{sa:?}"
        );
        assert!(sa.uploaded_bytes >= data.len() as u64);
        assert!(sa.data_channel_port.is_some());
        shut_down(b).await;
        shut_down(a).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_data_channel_at_the_provider_the_download_stays_on_libp2p() {
        let (a, b) = pair_with(false, true).await;
        let data = download_between(&a, &b, (1 << 20) + 5).await;
        let sb = b.media.stats();
        assert_eq!(sb.direct_downloaded_bytes, 0);
        assert_eq!(sb.downloaded_bytes, data.len() as u64);
        assert_eq!(a.media.stats().data_channel_port, None);
        shut_down(b).await;
        shut_down(a).await;
    }

    /// Connects to A's data channel and greets with `magic` ‖ `ticket`.
    async fn greet(a: &Node, magic: &[u8], ticket: &[u8]) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let port = a.media.data_channel_port().expect("a data channel");
        let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        sock.write_all(&[magic, ticket].concat())
            .await
            .expect("greets");
        sock
    }

    /// Whether the server closed `sock` (rather than answering).
    async fn closed(sock: &mut tokio::net::TcpStream) -> bool {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(TIMEOUT, sock.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_data_channel_admits_a_ticket_once_and_closes_on_bad_frames() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use crate::{
            direct::{decode_lengths, ChunkRange, ReplyHead, MAGIC, REPLY_HEAD_LEN},
            wire::{MediaRequest, MediaResponse},
        };
        let a = node_with(Vec::new(), 0, true).await;
        let data: Vec<u8> = (0..200_000).map(|i| (i % 249) as u8).collect();
        let id = a
            .media
            .publish_bytes(data.clone(), fields("tickets"))
            .await
            .expect("published");
        let viewer = rusty_network::PeerId::random();
        let ticket = match a
            .media
            .answer_request(viewer, MediaRequest::DirectTicket)
            .await
        {
            MediaResponse::Direct { ticket, port } => {
                assert_eq!(Some(port), a.media.data_channel_port());
                ticket
            }
            other => panic!("expected a ticket, got {other:?}"),
        };
        // Not our protocol; a ticket never issued: closed without a word.
        assert!(closed(&mut greet(&a, b"GET / HT", &ticket).await).await);
        assert!(closed(&mut greet(&a, &MAGIC, &[0xee; 32]).await).await);
        // The issued ticket admits one connection, which gets the bytes.
        let mut sock = greet(&a, &MAGIC, &ticket).await;
        let range = ChunkRange {
            id,
            start: 0,
            count: 16,
        };
        sock.write_all(&range.encode()).await.expect("asks");
        let mut head = [0u8; REPLY_HEAD_LEN];
        sock.read_exact(&mut head).await.expect("a reply");
        let ReplyHead::Chunks { start: 0, count } = ReplyHead::decode(&head).expect("valid") else {
            panic!("expected chunks");
        };
        // 200,000 bytes are 4 chunks: all of them, the last short.
        assert_eq!(count, 4);
        let mut lens = vec![0u8; 4 * usize::from(count)];
        sock.read_exact(&mut lens).await.expect("lengths");
        let total: usize = decode_lengths(0, &lens)
            .expect("valid")
            .iter()
            .map(|l| *l as usize)
            .sum();
        let mut body = vec![0u8; total];
        sock.read_exact(&mut body).await.expect("the chunks");
        assert!(body == data);
        // Content it lacks: not found, and the connection stays.
        let other = ChunkRange {
            id: Hash256([5; 32]),
            start: 0,
            count: 1,
        };
        sock.write_all(&other.encode()).await.expect("asks");
        sock.read_exact(&mut head).await.expect("a reply");
        assert_eq!(ReplyHead::decode(&head).ok(), Some(ReplyHead::NotFound));
        // A frame that breaks the rules closes it.
        let mut bad = range.encode();
        bad[40..].copy_from_slice(&0u32.to_le_bytes());
        sock.write_all(&bad).await.expect("sends");
        assert!(closed(&mut sock).await);
        // The spent ticket admits nobody else.
        assert!(closed(&mut greet(&a, &MAGIC, &ticket).await).await);
        assert!(a.media.stats().direct_uploaded_bytes >= data.len() as u64);
        shut_down(a).await;
    }

    /// A provider whose disk corrupted a chunk serves it over the data
    /// channel (it does not re-verify there). The viewer's check fails, the
    /// channel closes without a penalty, the range goes over libp2p, where
    /// the provider's read finds the corruption and forgets the chunk; once
    /// the provider has it again, the download completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_chunk_on_the_data_channel_costs_the_channel_not_the_peer() {
        const BAD: u64 = 200;
        let (a, b) = pair_limited(0, true, true).await;
        let data: Vec<u8> = (0..16 << 20).map(|i| (i % 241) as u8).collect();
        let id = a
            .media
            .publish_bytes(data.clone(), fields("bad disk"))
            .await
            .expect("published");
        let cs = crate::manifest::CHUNK_SIZE as usize;
        let at = BAD as usize * cs;
        let path = a.media.store().content_path(&id);
        let mut on_disk = std::fs::read(&path).expect("content file");
        on_disk[at + 17] ^= 0x5a;
        std::fs::write(&path, &on_disk).expect("corrupted");

        let d = b.media.download(id).await;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        // The corrupt copy reaches B over the data channel (the channel is
        // open well before chunk 200's range is asked), and A forgets the
        // chunk when B asks for it again over libp2p.
        loop {
            let forgotten = a
                .media
                .store()
                .missing_chunks(&id)
                .expect("store")
                .contains(&BAD);
            if b.media.stats().bad_chunks >= 1 && forgotten {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                b.media.stats()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // No penalty: A is neither banned nor dropped by B.
        let net = &b.media.shared.net;
        assert!(net.bans().await.expect("bans").is_empty());
        assert!(net
            .peers()
            .await
            .expect("peers")
            .iter()
            .any(|p| p.peer_id == a.media.peer_id()));
        assert!(b.media.stats().direct_downloaded_bytes > 0);

        // A gets the chunk back; B's download completes (over libp2p for
        // A now) with the right bytes.
        assert!(a
            .media
            .store()
            .put_chunk(&id, BAD, &data[at..at + cs])
            .expect("stored"));
        completes_intact(&b, &d, id, &data).await;
        shut_down(b).await;
        shut_down(a).await;
    }
}
