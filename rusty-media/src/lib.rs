//! The media layer: content that travels on the node's P2P network.
//!
//! - [`augy`]: the `.augy` audio container (pack, inspect, unpack), every
//!   field validated on read.
//! - [`manifest`]: the creator-signed manifest of a piece of content and its
//!   content id (BLAKE3 of the signed manifest), 64 KiB chunking and chunk
//!   verification.
//! - [`store`]: the content store under `<datadir>/content/ab/<hash>`, with
//!   the catalog in RocksDB, pinned and cached content, LRU eviction of
//!   cached content under a size cap, and partial downloads that resume.
//!
//! Transport (announcements, chunk requests), live streams, playback and
//! payments build on these (issue 5, in progress).

pub mod augy;
pub mod crypt;
pub mod http;
pub mod manifest;
pub mod store;
pub mod wire;
pub mod live;
pub mod broadcast;
pub mod downloader;
pub mod service;
