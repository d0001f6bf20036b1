//! Fetching one announced segment (viewer): other viewers first, the
//! announcer last. Runs as its own task, started by the stream's task; it
//! asks the stream whom to try and hands back what verified.

use std::{
    collections::HashSet,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use rand::seq::SliceRandom;
use rusty_network::PeerId;
use tracing::debug;

use super::{task::StreamCommand, LiveStream, FETCH_DEADLINE};
use crate::{
    service::MediaHandle,
    wire::{MediaRequest, MediaResponse, SegmentAnnouncement},
};

/// The pause between rounds over the candidate peers.
const ROUND_PAUSE: Duration = Duration::from_millis(25);

/// Fetches segment `ann.seq` and hands it to the stream, or tells the
/// stream it gave up.
pub(super) async fn run(
    svc: MediaHandle,
    stream: LiveStream,
    ann: SegmentAnnouncement,
    author: Option<PeerId>,
) {
    let seq = ann.seq;
    let started = Instant::now();
    let cmd = match fetch(&svc, &stream, ann, author).await {
        // The one copy of the segment, made here rather than in the
        // stream's task.
        Some((ann, data)) => StreamCommand::Arrived {
            ann,
            data: data.into(),
            fetch_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
        None => StreamCommand::FetchFailed { seq },
    };
    let _ = stream.commands.send(cmd).await;
}

/// The verified segment, or `None` after [`FETCH_DEADLINE`], once the
/// stream ended, or once playback moved past it.
async fn fetch(
    svc: &MediaHandle,
    stream: &LiveStream,
    ann: SegmentAnnouncement,
    author: Option<PeerId>,
) -> Option<(SegmentAnnouncement, Vec<u8>)> {
    let deadline = Instant::now() + FETCH_DEADLINE;
    let creator = stream.manifest.manifest.creator();
    let me = svc.peer_id();
    let mut bad: HashSet<PeerId> = HashSet::new();
    while Instant::now() < deadline && !stream.is_ended() {
        let seq = ann.seq;
        let mut candidates = stream
            .ask(|reply| StreamCommand::FetchPeers { seq, reply })
            .await
            .flatten()?;
        candidates.retain(|p| Some(*p) != author && *p != me && !bad.contains(p));
        candidates.shuffle(&mut rand::thread_rng());
        if let Some(a) = author.filter(|a| !bad.contains(a)) {
            candidates.push(a);
        }
        for peer in candidates {
            let req = MediaRequest::Segment { id: stream.id, seq };
            match svc.request(peer, &req).await {
                Ok(MediaResponse::Segment { announcement, data }) => {
                    let ok = announcement.stream == stream.id
                        && announcement.seq == seq
                        && announcement.hash == ann.hash
                        && announcement.verify(&creator).is_ok()
                        && announcement.verify_data(&data).is_ok();
                    if ok {
                        svc.shared
                            .counters
                            .downloaded_bytes
                            .fetch_add(data.len() as u64, Ordering::Relaxed);
                        return Some((announcement, data));
                    }
                    bad.insert(peer);
                    svc.shared
                        .counters
                        .bad_chunks
                        .fetch_add(1, Ordering::Relaxed);
                    svc.penalise(
                        peer,
                        &format!("live segment {seq} of {} does not verify", stream.id),
                    );
                }
                Ok(MediaResponse::NotFound | MediaResponse::Busy) => {}
                Ok(_) => {
                    bad.insert(peer);
                    svc.penalise(peer, "answered a segment request with other data");
                }
                Err(e) => {
                    debug!(target: "media", %peer, seq, error = %e, "segment request failed");
                }
            }
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
    None
}
