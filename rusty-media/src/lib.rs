//! The media layer: content that travels on the node's P2P network.
//!
//! - [`manifest`]: the creator-signed manifest of a piece of content and its
//!   content id (BLAKE3 of the signed manifest), 64 KiB chunking and chunk
//!   verification.
//! - [`store`]: the content store under `<datadir>/content/ab/<hash>`, with
//!   the catalog in RocksDB, pinned and cached content, LRU eviction of
//!   cached content under a size cap, and partial downloads that resume.
//! - [`wire`]: the media protocol's requests and replies and the
//!   announcements on the `media` gossip topic.
//! - [`service`]: the node's media service: serving peers under the upload
//!   limit, judging announcements, publishing; [`downloader`]: fetching a
//!   file from every provider; [`broadcast`]: live streams (broadcaster and
//!   viewers), each owned by a task of its own behind a `LiveStream`
//!   handle; [`live`]: segmenting and the jitter buffer; [`direct`]: the
//!   direct data channel, chunk ranges over plain TCP beside libp2p.
//! - [`http`]: the local playback server (Range requests, HLS).
//! - [`crypt`]: encryption of priced content and sealing its key to a
//!   buyer.
//! - [`priority`]: threads that run only on CPU time nothing else wants
//!   (media's bulk I/O, the node's miner).
//! - [`augy`]: the `.augy` audio container (pack, inspect, unpack), every
//!   field validated on read.
//!
//! See `docs/media.md`.

pub mod abr;
pub mod augy;
pub mod broadcast;
pub mod crypt;
pub mod direct;
pub mod downloader;
pub mod http;
pub mod ladder;
pub mod live;
pub mod manifest;
pub mod priority;
pub mod selection;
pub mod service;
pub mod store;
pub mod wire;
