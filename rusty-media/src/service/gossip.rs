//! The service on the `media` topic and as a requester: judging
//! announcements, announcing, asking peers for manifests.
//!
//! Judging happens on the caller's task (the node's P2P task) against the
//! content store, so the verdict goes back to gossipsub at once; what an
//! accepted announcement teaches (providers, watchers, segments to fetch)
//! goes to the media task as a command.

use std::{sync::atomic::Ordering, time::Duration};

use rusty_network::{
    Acceptance, MessageId, PeerAction, PeerId, Request, RequestError, Response, Topic,
};
use rusty_shared_types::Hash256;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, warn};

use super::{actor::MediaCommand, blocking, MediaHandle, MAX_ANNOUNCED_MANIFESTS, REQUEST_TIMEOUT};
use crate::{
    manifest::SignedManifest,
    wire::{Announcement, MediaRequest, MediaResponse, WireError},
};

/// Checks that `manifest` is a live stream's and that `verify` accepts its
/// creator key (a segment announcement or an end of stream).
fn live_signed(
    manifest: &SignedManifest,
    verify: impl FnOnce(&rusty_crypto::ed25519::PublicKey) -> Result<(), WireError>,
) -> Result<(), WireError> {
    if !manifest.manifest.live {
        return Err(WireError::NotLive);
    }
    verify(&manifest.manifest.creator())
}

impl MediaHandle {
    /// A message on the `media` topic. Judges it at once (gossipsub
    /// forwards only accepted messages) and acts on it in the background.
    pub fn on_gossip(&self, source: PeerId, author: Option<PeerId>, id: MessageId, data: &[u8]) {
        let (verdict, learned) = match Announcement::decode(data) {
            Err(e) => {
                self.bad_announcement(source, &e);
                (Acceptance::Reject, None)
            }
            Ok(a) => self.judge(source, author, a),
        };
        self.shared.net.validate(id, source, verdict);
        if let Some(cmd) = learned {
            // The P2P task must not wait on the media task: when its queue
            // is full, what this announcement taught is dropped (gossip is
            // best effort; providers are also found in the DHT).
            match self.commands.try_send(cmd) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(_)) => {
                    debug!(target: "media", %source, "media task busy: announcement not acted on");
                }
            }
        }
    }

    fn bad_announcement(&self, source: PeerId, e: &WireError) {
        self.shared
            .counters
            .bad_announcements
            .fetch_add(1, Ordering::Relaxed);
        debug!(target: "media", %source, error = %e, "bad media announcement");
        self.shared.net.report(
            source,
            PeerAction::LowTolerance,
            format!("bad media announcement: {e}"),
        );
    }

    /// The verdict on a decoded announcement, and what to tell the media
    /// task.
    fn judge(
        &self,
        source: PeerId,
        author: Option<PeerId>,
        a: Announcement,
    ) -> (Acceptance, Option<MediaCommand>) {
        let me = self.peer_id();
        match a {
            Announcement::Published { id } | Announcement::Have { id } => {
                let Some(author) = author.filter(|p| *p != me) else {
                    return (Acceptance::Ignore, None);
                };
                let fetch_manifest =
                    matches!(a, Announcement::Published { .. }) && self.wants_manifest(&id);
                let cmd = MediaCommand::Announced {
                    id,
                    author,
                    fetch_manifest,
                };
                (Acceptance::Accept, Some(cmd))
            }
            Announcement::Segment(ann) => {
                let Ok(Some(manifest)) = self.shared.store.manifest(&ann.stream) else {
                    // Not known here: cannot judge, so do not forward; learn
                    // the stream from whoever announced it.
                    let cmd = author.filter(|_| self.under_manifest_budget()).map(|from| {
                        MediaCommand::FetchManifest {
                            id: ann.stream,
                            from,
                        }
                    });
                    return (Acceptance::Ignore, cmd);
                };
                if let Err(e) = live_signed(&manifest, |creator| ann.verify(creator)) {
                    self.bad_announcement(source, &e);
                    return (Acceptance::Reject, None);
                }
                (
                    Acceptance::Accept,
                    Some(MediaCommand::Segment { ann, author }),
                )
            }
            Announcement::End(end) => {
                let Ok(Some(manifest)) = self.shared.store.manifest(&end.stream) else {
                    return (Acceptance::Ignore, None);
                };
                if let Err(e) = live_signed(&manifest, |creator| end.verify(creator)) {
                    self.bad_announcement(source, &e);
                    return (Acceptance::Reject, None);
                }
                let cmd = MediaCommand::StreamEnd {
                    stream: end.stream,
                    last_seq: end.last_seq,
                };
                (Acceptance::Accept, Some(cmd))
            }
        }
    }

    /// Whether an announced manifest is worth fetching: not in the store,
    /// and the per-run budget of announced manifests not spent.
    fn wants_manifest(&self, id: &Hash256) -> bool {
        !matches!(self.shared.store.manifest(id), Ok(Some(_))) && self.under_manifest_budget()
    }

    fn under_manifest_budget(&self) -> bool {
        self.shared.announced_manifests.load(Ordering::Relaxed) < MAX_ANNOUNCED_MANIFESTS as u64
    }

    /// Asks one peer for the manifest of `id`; verifies it and adds it to
    /// the catalog (unpinned).
    pub(crate) async fn fetch_manifest_from(
        &self,
        id: Hash256,
        peer: PeerId,
    ) -> Result<std::sync::Arc<SignedManifest>, String> {
        self.fetch_manifest_limited(id, peer, usize::MAX).await
    }

    /// [`MediaHandle::fetch_manifest_from`], keeping it only if its
    /// encoding is at most `max_bytes` (announced content, for the catalog).
    pub(super) async fn fetch_manifest_limited(
        &self,
        id: Hash256,
        peer: PeerId,
        max_bytes: usize,
    ) -> Result<std::sync::Arc<SignedManifest>, String> {
        match self.request(peer, &MediaRequest::Manifest { id }).await? {
            MediaResponse::Manifest(bytes) if bytes.len() > max_bytes => Err(format!(
                "manifest of {} bytes: not kept for an announcement",
                bytes.len()
            )),
            MediaResponse::Manifest(bytes) => {
                if max_bytes != usize::MAX {
                    self.shared
                        .announced_manifests
                        .fetch_add(1, Ordering::Relaxed);
                }
                let signed = match SignedManifest::decode_verified(&bytes) {
                    Ok(s) if s.content_id() == id => s,
                    Ok(_) => {
                        self.penalise(peer, "sent a manifest of other content");
                        return Err("the manifest sent is of other content".into());
                    }
                    Err(e) => {
                        self.penalise(peer, &format!("sent a bad manifest: {e}"));
                        return Err(format!("bad manifest: {e}"));
                    }
                };
                let store = self.shared.store.clone();
                blocking(move || Ok(store.add_manifest(signed, false)?))
                    .await
                    .map_err(|e| e.to_string())?;
                self.add_provider(id, peer).await;
                self.shared
                    .store
                    .manifest(&id)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "manifest evicted".to_owned())
            }
            MediaResponse::NotFound => Err("not found".into()),
            MediaResponse::Busy => Err("busy".into()),
            _ => {
                self.penalise(peer, "answered a manifest request with something else");
                Err("unexpected reply".into())
            }
        }
    }

    /// Penalises a peer for provably bad media data.
    pub(crate) fn penalise(&self, peer: PeerId, reason: &str) {
        warn!(target: "media", %peer, reason, "penalising peer");
        self.shared
            .net
            .report(peer, PeerAction::Fatal, format!("media: {reason}"));
    }

    /// One media request to `peer`, with a timeout; a reply that does not
    /// decode penalises the peer.
    pub(crate) async fn request(
        &self,
        peer: PeerId,
        req: &MediaRequest,
    ) -> Result<MediaResponse, String> {
        let fut = self.shared.net.request(peer, Request::Media(req.encode()));
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(RequestError::Unsupported)) => return Err("peer has no media protocol".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(r)) => r,
        };
        match resp {
            Response::Media(bytes) => MediaResponse::decode(&bytes).map_err(|e| {
                self.penalise(peer, &format!("malformed media reply: {e}"));
                format!("malformed reply: {e}")
            }),
            _ => Err("reply on another protocol".into()),
        }
    }

    /// Tells the network this node has `id`: a `Have` announcement and a
    /// provider record (once per content per run).
    pub(crate) async fn announce_have(&self, id: Hash256, published: bool) {
        let first = self
            .ask(|reply| MediaCommand::StartProviding { id, reply })
            .await;
        if !matches!(first, Ok(true)) {
            return;
        }
        let a = if published {
            Announcement::Published { id }
        } else {
            Announcement::Have { id }
        };
        if let Err(e) = self.shared.net.publish(Topic::Media, a.encode()).await {
            debug!(target: "media", %id, error = %e, "announcement not published");
        }
        if let Err(e) = self.shared.net.start_providing(id.0.to_vec()).await {
            debug!(target: "media", %id, error = %e, "provider record not stored");
        }
    }

    /// After a start: announces and provides (again) everything the store
    /// holds complete, a few per second, so content stays findable across
    /// restarts (provider records live in memory).
    pub fn spawn_reannounce(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            // Let the first connections come up (a stop cuts this short).
            for _ in 0..30 {
                if this.is_stopped() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let store = this.shared.store.clone();
            let Ok(items) = blocking(move || Ok(store.list()?)).await else {
                return;
            };
            for i in items.into_iter().filter(|i| i.complete && !i.live) {
                if this.is_stopped() {
                    return;
                }
                this.announce_have(i.id, false).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    /// Announces again (a `Have`, e.g. for peers that joined later).
    pub(crate) async fn reannounce(&self, id: Hash256) {
        let a = Announcement::Have { id };
        let _ = self.shared.net.publish(Topic::Media, a.encode()).await;
    }
}
