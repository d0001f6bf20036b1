//! The benchmarks behind `rusty-cli bench`. Each prints its figures beside a
//! yardstick measured in the same run on the same machine.
//!
//! - [`connect`]: block connection into RocksDB beside raw Ed25519 batch
//!   verification.
//! - [`erc20`]: ERC-20 transfers connected (EVM, state trie, receipts,
//!   RocksDB) beside revm alone on an in-memory database.
//! - [`network`]: initial sync and transaction gossip over loopback beside
//!   raw loopback TCP.
//! - [`bls`]: BLS threshold recovery and aggregate verification beside raw
//!   `blst`.
//! - [`chainlock`]: ChainLock latency on a masternode localnet.
//! - [`media`]: media transfer beside raw loopback TCP, live upload share and
//!   latency; [`beside`]: blocks and ChainLocks with and without transfers.
//! - [`superblock`]: connecting a governance superblock (and its snapshot
//!   block) beside an ordinary block of the same size on the same chain.
//! - [`swap`]: an atomic swap between RSC and PAR dev localnets, offer to
//!   both sides completed, by state, beside the block spacing.

pub mod abr;
pub mod beside;
pub mod bls;
pub mod chainlock;
pub mod connect;
pub mod erc20;
pub mod media;
pub mod network;
pub mod player;
pub mod select;
pub mod superblock;
pub mod swap;
pub mod torrent;

/// Whether an outside program a benchmark compares against (aria2c, ffmpeg)
/// is installed: it runs and exits 0 when asked its version.
pub(crate) fn tool_runs(program: &str, version_flag: &str) -> bool {
    std::process::Command::new(program)
        .arg(version_flag)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
