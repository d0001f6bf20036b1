//! Media: `stream_publish`, `stream_list`, `stream_search`, `stream_info`,
//! `stream_view`, `stream_status`, `stream_read`, `stream_segments`,
//! `stream_broadcast`, `stream_broadcast_push`, `stream_broadcast_end`,
//! `stream_unwatch`, `stream_buy` (see `docs/rpc.md#media`).

use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Options of `stream_publish` and `stream_broadcast`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishOptions {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mime: Option<String>,
    /// Coins (a number or a string, as amounts elsewhere); priced content
    /// is encrypted and sold for this.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub price: Option<Value>,
}

// Result fields are declared in alphabetical order: the JSON objects these
// replace were serde_json maps, which keep their keys sorted.

/// `stream_view`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Viewing {
    /// A live stream (watched) rather than a file (downloaded).
    pub live: bool,
    /// The live stream's or the download's status.
    pub status: Value,
    /// Where a player reads it straight from the node, bytes as they are
    /// (`…/media/<id>/content` with Range, or `…/media/<id>/live.m3u8`),
    /// from the web UI (`--ui-bind`) or the playback server
    /// (`--playback-bind`, on 127.0.0.1 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback_url: Option<String>,
}

/// `stream_read`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamData {
    /// Base64.
    pub data: String,
    pub offset: u64,
}

/// One live segment of `stream_segments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSegment {
    /// Base64.
    pub data: String,
    pub duration_ms: u32,
    pub latency_ms: u64,
    pub seq: u64,
}

/// `stream_segments`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSegments {
    /// The stream ended (after these segments).
    pub ended: bool,
    /// The sequence number to ask for next.
    pub next: u64,
    pub segments: Vec<LiveSegment>,
    /// The viewer's status (last_seq, latency percentiles, skipped, …).
    pub status: Value,
}

/// `stream_broadcast`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastStarted {
    pub id: String,
}

/// `stream_buy`'s result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub content: String,
    /// Coins, as a JSON number.
    pub price: Value,
    pub txid: String,
}

/// The media layer: publishing, finding, viewing, live streams, buying.
/// Content ids are 64 hex digits.
#[rpc(server, client)]
pub trait MediaApi {
    /// Publishes the file at `path` (on the node's machine).
    #[method(name = "stream_publish")]
    async fn stream_publish(
        &self,
        path: String,
        options: Option<PublishOptions>,
    ) -> RpcResult<Value>;

    #[method(name = "stream_list")]
    async fn stream_list(&self) -> RpcResult<Value>;

    #[method(name = "stream_search")]
    async fn stream_search(&self, query: String) -> RpcResult<Value>;

    #[method(name = "stream_info")]
    async fn stream_info(&self, id: String) -> RpcResult<Value>;

    /// Starts fetching (or joins a live stream).
    #[method(name = "stream_view")]
    async fn stream_view(&self, id: String) -> RpcResult<Viewing>;

    /// Download progress of `id`, or of every download.
    #[method(name = "stream_status")]
    async fn stream_status(&self, id: Option<String>) -> RpcResult<Value>;

    /// Up to `length` bytes at `offset`, base64, waiting up to `wait` ms
    /// for missing chunks.
    #[method(name = "stream_read")]
    async fn stream_read(
        &self,
        id: String,
        offset: u64,
        length: u64,
        wait: Option<u64>,
    ) -> RpcResult<StreamData>;

    /// Live segments from sequence number `from`, waiting up to `wait` ms.
    #[method(name = "stream_segments")]
    async fn stream_segments(
        &self,
        id: String,
        from: u64,
        wait: Option<u64>,
    ) -> RpcResult<LiveSegments>;

    /// Starts a live broadcast; returns its content id.
    #[method(name = "stream_broadcast")]
    async fn stream_broadcast(
        &self,
        options: Option<PublishOptions>,
    ) -> RpcResult<BroadcastStarted>;

    /// Pushes base64 input to a live broadcast.
    #[method(name = "stream_broadcast_push")]
    async fn stream_broadcast_push(&self, id: String, data: String) -> RpcResult<Value>;

    #[method(name = "stream_broadcast_end")]
    async fn stream_broadcast_end(&self, id: String) -> RpcResult<Value>;

    /// Pays for priced content from the wallet.
    #[method(name = "stream_buy")]
    async fn stream_buy(&self, id: String) -> RpcResult<Purchase>;

    /// Stops watching a live stream.
    #[method(name = "stream_unwatch")]
    async fn stream_unwatch(&self, id: String) -> RpcResult<Value>;
}
