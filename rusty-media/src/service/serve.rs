//! Answering peers' media requests: manifests and chunk ranges from the
//! content store, live segments from the streams' windows, under the
//! upload limit.
//!
//! Each request is answered in its own task, bounded by a semaphore; the
//! bytes never pass through the media task. Only two small questions go to
//! it: which live stream a segment request is for, and (when an upload
//! limit is set) how long the reply must wait for upload tokens. A segment
//! request then asks that stream's task, which hands out a shared handle
//! on the segment (the reply's copy is made here).

use std::sync::atomic::Ordering;

use rusty_network::{PeerAction, PeerId, Responder, Response};
use rusty_shared_types::{Encode, Hash256};
use tokio::sync::OwnedSemaphorePermit;

use super::{actor::MediaCommand, blocking, io_pool::low_priority, MediaHandle};
use crate::{
    broadcast::LiveStream,
    store::StoredRun,
    wire::{MediaRequest, MediaResponse},
};

/// A data-channel range's answer ([`MediaHandle::answer_direct`]).
#[derive(Debug)]
pub(crate) enum DirectAnswer {
    /// The stored chunks from `start` on, as they lie in their file.
    Run { start: u64, run: StoredRun },
    /// Over the upload limit or the reply budget.
    Busy,
    /// The first chunk asked for is not stored.
    NotFound,
}

impl MediaHandle {
    /// A `media` request from a peer; answered in a task.
    pub fn on_request(&self, peer: PeerId, body: Vec<u8>, responder: Responder) {
        let Ok(permit) = self.shared.serve_slots.clone().try_acquire_owned() else {
            self.shared
                .counters
                .shed_requests
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(resp) = this.answer(peer, &body).await else {
                return;
            };
            let bytes = resp.encode();
            // Hold the reply's size against the budget until it is out.
            let (bytes, _held) = match this.hold_reply_budget(bytes.len()) {
                Some(held) => (bytes, Some(held)),
                None => (MediaResponse::Busy.encode(), None),
            };
            this.shared
                .net
                .respond_and_wait(responder, Response::Media(bytes))
                .await;
        });
    }

    /// Holds a reply of `len` bytes against the budget of replies not yet
    /// sent (libp2p's and the data channel's alike): `None` when it is
    /// spent, and the reply should be `Busy`.
    pub(crate) fn hold_reply_budget(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX);
        match self.shared.reply_budget.clone().try_acquire_many_owned(kib) {
            Ok(held) => Some(held),
            Err(_) => {
                self.shared
                    .counters
                    .busy_replies
                    .fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    async fn answer(&self, peer: PeerId, body: &[u8]) -> Option<MediaResponse> {
        match MediaRequest::decode(body) {
            Ok(req) => Some(self.answer_request(peer, req).await),
            Err(e) => {
                self.shared.net.report(
                    peer,
                    PeerAction::LowTolerance,
                    format!("malformed media request: {e}"),
                );
                None
            }
        }
    }

    /// [`MediaHandle::answer_request`] for a range on the direct data
    /// channel: where the stored run lies in its file, for the channel to
    /// send without copying it through memory. The chunks are not
    /// re-verified on the way out. Its viewer verifies each, and a bad one
    /// only closes the channel (the bytes are unauthenticated there), after
    /// which the range is asked over libp2p, where the read re-verifies and
    /// drops a chunk the disk corrupted.
    pub(crate) async fn answer_direct(&self, id: Hash256, start: u64, count: u32) -> DirectAnswer {
        let store = self.shared.store.clone();
        // Bulk I/O runs below the node's other work (io_pool).
        let located = low_priority(move || Ok(store.locate_run(&id, start, count.into())?))
            .await
            .ok()
            .flatten();
        let Some(run) = located else {
            return DirectAnswer::NotFound;
        };
        let bytes = usize::try_from(run.len).unwrap_or(usize::MAX);
        if !self.count_upload(bytes).await {
            return DirectAnswer::Busy;
        }
        DirectAnswer::Run { start, run }
    }

    /// The answer to `peer`'s request, its upload counted and held to the
    /// upload limit (`Busy` beyond it).
    pub(crate) async fn answer_request(&self, peer: PeerId, req: MediaRequest) -> MediaResponse {
        let store = self.shared.store.clone();
        // The stream a segment came from, to count the upload against.
        let mut stream: Option<LiveStream> = None;
        let resp = match req {
            MediaRequest::Manifest { id } => {
                match blocking(move || Ok(store.manifest(&id)?)).await {
                    Ok(Some(m)) => MediaResponse::Manifest(m.encode()),
                    _ => MediaResponse::NotFound,
                }
            }
            MediaRequest::Chunks { id, start, count } => {
                // Bulk reads run below the node's other work (io_pool).
                let read = low_priority(move || Ok(store.read_chunks(&id, start, count.into())?))
                    .await
                    .unwrap_or_default();
                if read.is_empty() {
                    MediaResponse::NotFound
                } else {
                    MediaResponse::Chunks {
                        start,
                        chunks: read,
                    }
                }
            }
            MediaRequest::Segment { id, seq } => {
                stream = self.live_stream(&id).await;
                match &stream {
                    Some(l) => l.serve_segment(seq, peer).await,
                    None => MediaResponse::NotFound,
                }
            }
            MediaRequest::DirectTicket => match &self.shared.direct {
                Some(server) => match server.issue(peer).await {
                    Some(ticket) => MediaResponse::Direct {
                        port: server.port(),
                        ticket,
                    },
                    None => MediaResponse::Busy,
                },
                None => MediaResponse::NotFound,
            },
        };
        let bytes = match &resp {
            MediaResponse::Chunks { chunks, .. } => chunks.iter().map(Vec::len).sum(),
            MediaResponse::Segment { data, .. } => data.len(),
            MediaResponse::Manifest(m) => m.len(),
            _ => 0,
        };
        if bytes == 0 {
            return resp;
        }
        if !self.count_upload(bytes).await {
            return MediaResponse::Busy;
        }
        if let (MediaResponse::Segment { .. }, Some(l)) = (&resp, &stream) {
            l.count_upload(bytes as u64).await;
        }
        resp
    }

    /// Counts a reply of `bytes` as uploaded once the upload limit lets it
    /// go (waiting for tokens if need be); false when it must be `Busy`.
    async fn count_upload(&self, bytes: usize) -> bool {
        let Some(wait) = self.reserve_upload(bytes as u64).await else {
            self.shared
                .counters
                .busy_replies
                .fetch_add(1, Ordering::Relaxed);
            return false;
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let c = &self.shared.counters;
        c.uploaded_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        c.served_requests.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Upload tokens for a reply of `bytes`: how long it waits, or `None`
    /// to answer `Busy` (also once the service stopped).
    async fn reserve_upload(&self, bytes: u64) -> Option<std::time::Duration> {
        // Without a limit the bucket never says wait: spare the round trip.
        if self.shared.upload_limit.load(Ordering::Relaxed) == 0 {
            return Some(std::time::Duration::ZERO);
        }
        self.ask(|reply| MediaCommand::ReserveUpload { bytes, reply })
            .await
            .ok()
            .flatten()
    }
}
