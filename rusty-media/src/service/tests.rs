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
        downloader::DownloadState,
        manifest::ManifestFields,
        service::{MediaError, MediaHandle},
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
        let a = node(Vec::new(), 4 << 20).await;
        let b = node(a.media.shared.net.listen_addrs(), 0).await;
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
        a.media.broadcast_end(id).await.expect("ended");
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
        );
        tokio::spawn(task);
        assert_eq!(again.content_key(&id).await.map(|k| k.0), Some(key.0));
        again.stop();
        drop(again);
        shut_down(a).await;
    }
}
