//! The UI's static files, embedded in the binary at build time from
//! `rusty-node/ui/`: plain ES modules and CSS (no build step), and hls.js
//! vendored at a pinned version (`scripts/vendor-hlsjs.sh`, checked against
//! `ui/vendor/SHA256SUMS` by a test). Each answer carries an `ETag` (the
//! BLAKE3 of the file) so a reload costs a `304`.

use std::sync::Arc;

use axum::{
    extract::Path,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use super::Ui;

/// `(path under /assets/, content type, bytes)`.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../../ui/app.js")),
    ("dom.js", JS, include_bytes!("../../ui/dom.js")),
    ("api.js", JS, include_bytes!("../../ui/api.js")),
    (
        "pages/home.js",
        JS,
        include_bytes!("../../ui/pages/home.js"),
    ),
    (
        "pages/explorer.js",
        JS,
        include_bytes!("../../ui/pages/explorer.js"),
    ),
    (
        "pages/media.js",
        JS,
        include_bytes!("../../ui/pages/media.js"),
    ),
    (
        "pages/masternodes.js",
        JS,
        include_bytes!("../../ui/pages/masternodes.js"),
    ),
    (
        "pages/governance.js",
        JS,
        include_bytes!("../../ui/pages/governance.js"),
    ),
    (
        "pages/wallet.js",
        JS,
        include_bytes!("../../ui/pages/wallet.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../ui/style.css"),
    ),
    (
        "vendor/hls.min.js",
        JS,
        include_bytes!("../../ui/vendor/hls.min.js"),
    ),
    (
        "vendor/hls.js.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../ui/vendor/hls.js.LICENSE"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &[u8] = include_bytes!("../../ui/index.html");

pub fn router() -> Router<Arc<Ui>> {
    Router::new()
        .route("/", get(index))
        .route("/assets/*path", get(asset))
}

fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", &blake3::hash(bytes).to_hex()[..32])
}

fn answer(headers: &HeaderMap, content_type: &'static str, bytes: &'static [u8]) -> Response {
    let tag = etag(bytes);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let tag = HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        bytes,
    )
        .into_response()
}

async fn index(headers: HeaderMap) -> Response {
    answer(&headers, "text/html; charset=utf-8", INDEX)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => answer(&headers, content_type, bytes),
        None => super::error(StatusCode::NOT_FOUND, "no such asset"),
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// The vendored files are the ones `scripts/vendor-hlsjs.sh` recorded.
    #[test]
    fn vendored_files_match_their_checksums() {
        let sums = include_str!("../../ui/vendor/SHA256SUMS");
        let mut checked = 0;
        for line in sums.lines() {
            let (sum, name) = line.split_once("  ").expect("sha256sum format");
            let path = format!("vendor/{name}");
            let (_, _, bytes) = ASSETS
                .iter()
                .find(|(p, _, _)| *p == path)
                .unwrap_or_else(|| panic!("{path} is listed in SHA256SUMS but not embedded"));
            assert_eq!(hex::encode(Sha256::digest(bytes)), sum, "{path}");
            checked += 1;
        }
        assert_eq!(checked, 2);
    }
}
