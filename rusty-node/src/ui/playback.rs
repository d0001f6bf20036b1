//! Playback for the UI's player, straight from the node's media store:
//! bytes are never wrapped in JSON or base64.
//!
//! * `GET /media/<id>/content`: a file, with `Range` (`206`) as the CLI's
//!   playback server answers it (`rusty_media::http::parse_range`), streamed
//!   in pieces of at most 1 MiB, each read (and fetched first, with
//!   priority, when missing) through [`MediaSource`];
//! * `GET /media/<id>/live.m3u8` and `/media/<id>/live/<seq>.ts`: a live
//!   stream's HLS playlist and segments;
//! * `GET /media/<master>/abr.m3u8` and `/media/<master>/abr/<n>.ts`: a
//!   ladder as one media playlist whose segments' renditions the node
//!   chooses (`rusty_media::ladder::play`; a live ladder's is a live
//!   playlist, `<n>` its broadcasts' segment number), and
//!   `GET /api/v1/media/<master>/abr`: what it chose;
//! * `GET /media/<master>/master.m3u8`: the ladder's master playlist for a
//!   player that chooses renditions itself, without those above what the
//!   swarm carries now (the same player task measures it), its URIs on
//!   `../<id>/index.m3u8` (a rendition's playlist, rewritten the same way)
//!   and `../<id>/data.ts` (`content` under a name with an extension), as
//!   ffmpeg and mpv require.
//!
//! Only content the node already knows (its manifest is in the store, after
//! `POST /api/v1/media/<id>/view` or a publish) is served: a GET never
//! starts a download.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use rusty_media::{
    http::{hls_playlist, parse_range, PlaybackSource, RangeOutcome, MAX_PIECE},
    ladder::{
        self,
        play::{LadderPlayError, LadderPlayer},
    },
    service::MediaSource,
};
use rusty_shared_types::Hash256;

use super::{error, Ui};

pub fn router() -> Router<Arc<Ui>> {
    Router::new()
        .route("/media/:id/content", get(content))
        .route("/media/:id/live.m3u8", get(playlist))
        .route("/media/:id/live/:segment", get(segment))
        .route("/media/:id/abr.m3u8", get(abr_playlist))
        .route("/media/:id/master.m3u8", get(capped_master))
        .route("/media/:id/index.m3u8", get(playlist_with_extensions))
        .route("/media/:id/data.ts", get(content))
        .route("/media/:id/abr/:segment", get(abr_segment))
        .route("/api/v1/media/:id/abr", get(abr_status))
}

/// The media source of `id`, if the node has its manifest.
fn source(ui: &Ui, id: &str) -> Result<MediaSource, super::api::ApiError> {
    let media = ui.ctx.media.clone().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node runs without media",
        )
    })?;
    let id: Hash256 = id
        .parse()
        .map_err(|_| error(StatusCode::BAD_REQUEST, "a content id is 64 hex characters"))?;
    if media.info(&id).is_err() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "unknown content: start it with POST /api/v1/media/<id>/view",
        )
        .into());
    }
    Ok(MediaSource { media, id })
}

async fn content(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let source = match source(&ui, &id) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let info = match source.info().await {
        Ok(i) => i,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let Some(size) = info.size else {
        return error(StatusCode::NOT_FOUND, "a live stream: play /live.m3u8");
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, size));
    let (status, start, end) = match range {
        None | Some(RangeOutcome::Ignore) => (StatusCode::OK, 0, size),
        Some(RangeOutcome::Range { start, end }) => (StatusCode::PARTIAL_CONTENT, start, end),
        Some(RangeOutcome::Unsatisfiable) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let pieces = futures::stream::unfold(start, move |at| {
        let source = source.clone();
        async move {
            if at >= end {
                return None;
            }
            let to = end.min((at / MAX_PIECE + 1) * MAX_PIECE);
            match source.read_range(at, to).await {
                Ok(bytes) => Some((Ok::<_, std::io::Error>(bytes), to)),
                // The response has started: ending the body early is all
                // that is left (the player sees a short read and retries).
                Err(e) => Some((Err(std::io::Error::other(e)), end)),
            }
        }
    });
    let mut response = Response::new(Body::from_stream(pieces));
    *response.status_mut() = status;
    let h = response.headers_mut();
    let mime = HeaderValue::from_str(&info.mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, mime);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    response
}

async fn playlist(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let source = match source(&ui, &id) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let window = source.live_window().await.unwrap_or_default();
    match hls_playlist(&window) {
        Some(text) => (
            [
                (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            text,
        )
            .into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no segment yet; the player retries",
        ),
    }
}

async fn segment(
    State(ui): State<Arc<Ui>>,
    Path((id, segment)): Path<(String, String)>,
) -> Response {
    let source = match source(&ui, &id) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let Some(seq) = segment
        .strip_suffix(".ts")
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return error(StatusCode::NOT_FOUND, "segments are <seq>.ts");
    };
    match source.live_segment(seq).await {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "video/mp2t")], bytes).into_response(),
        _ => error(StatusCode::NOT_FOUND, "segment not in the live window"),
    }
}

/// The node's player of the ladder under `id` (a known master playlist).
async fn ladder(ui: &Ui, id: &str) -> Result<LadderPlayer, Response> {
    let source = source(ui, id).map_err(IntoResponse::into_response)?;
    source
        .media
        .ladder_player(source.id)
        .await
        .map_err(|e| ladder_error(&e))
}

fn ladder_error(e: &LadderPlayError) -> Response {
    let status = match e {
        LadderPlayError::NotAMaster(_) | LadderPlayError::Live | LadderPlayError::BadLadder(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        LadderPlayError::NoSegment(_) => StatusCode::NOT_FOUND,
        LadderPlayError::Media(_) | LadderPlayError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

async fn abr_playlist(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let player = match ladder(&ui, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match player.playlist().await {
        Ok(text) => (
            [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
            text,
        )
            .into_response(),
        Err(e) => ladder_error(&e),
    }
}

/// The master playlist for a player that chooses renditions itself, capped
/// to what the swarm carries now (`LadderPlayer::capped_master`).
async fn capped_master(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let player = match ladder(&ui, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match player.capped_master().await {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                // The cap moves with the swarm: never cache it.
                (header::CACHE_CONTROL, "no-store"),
            ],
            ladder::with_extensions(&text),
        )
            .into_response(),
        Err(e) => ladder_error(&e),
    }
}

/// A playlist content (a ladder's rendition playlist) with its URIs on the
/// `index.m3u8` / `data.ts` paths, which players that check extensions
/// accept (`rusty_media::ladder::with_extensions`).
async fn playlist_with_extensions(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let source = match source(&ui, &id) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let text = match ladder::play::read_text(&source.media, source.id).await {
        Ok(t) => t,
        Err(e) => return ladder_error(&e),
    };
    (
        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
        ladder::with_extensions(&text),
    )
        .into_response()
}

async fn abr_segment(
    State(ui): State<Arc<Ui>>,
    Path((id, segment)): Path<(String, String)>,
) -> Response {
    let Some(n) = segment
        .strip_suffix(".ts")
        .and_then(|s| s.parse::<usize>().ok())
    else {
        return error(StatusCode::NOT_FOUND, "segments are <n>.ts");
    };
    let player = match ladder(&ui, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match player.segment(n).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "video/mp2t")], bytes).into_response(),
        Err(e) => ladder_error(&e),
    }
}

async fn abr_status(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let player = match ladder(&ui, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match player.status().await {
        Ok(status) => axum::Json(status).into_response(),
        Err(e) => ladder_error(&e),
    }
}
