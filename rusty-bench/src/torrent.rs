//! The BitTorrent yardstick of `rusty-cli bench media`: the same file moved
//! between two aria2c clients (Debian's `aria2`) over loopback, timed like
//! ours, in the same run.
//!
//! The bench writes a `.torrent` (1 MiB pieces, SHA-1 piece hashes) and runs
//! a minimal HTTP tracker on loopback that answers each announce with the
//! other client's address (compact form); DHT, local peer discovery and
//! peer exchange are off, so the two clients meet only through it. The
//! seeder checks its copy first; the leecher is timed from its start to its
//! exit with the whole file verified (`--seed-time=0`), which includes its
//! process start and its first announce (a few milliseconds on loopback).

use std::{
    collections::HashMap,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sha1::{Digest, Sha1};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::{connect::BenchError, network::setup};

const PIECE: usize = 1 << 20;

/// Whether `aria2c` can run here.
pub fn aria2c_installed() -> bool {
    crate::tool_runs("aria2c", "--version")
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("{}:", b.len()).as_bytes());
    out.extend_from_slice(b);
}

fn int(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(format!("i{n}e").as_bytes());
}

/// The bencoded info dictionary of a single-file torrent.
fn info(name: &str, data: &[u8]) -> Vec<u8> {
    let mut pieces = Vec::with_capacity(data.len().div_ceil(PIECE) * 20);
    for piece in data.chunks(PIECE) {
        pieces.extend_from_slice(&Sha1::digest(piece));
    }
    let mut out = b"d".to_vec();
    bytes(&mut out, b"length");
    int(&mut out, data.len() as u64);
    bytes(&mut out, b"name");
    bytes(&mut out, name.as_bytes());
    bytes(&mut out, b"piece length");
    int(&mut out, PIECE as u64);
    bytes(&mut out, b"pieces");
    bytes(&mut out, &pieces);
    out.push(b'e');
    out
}

fn torrent(announce: &str, info: &[u8]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    bytes(&mut out, b"announce");
    bytes(&mut out, announce.as_bytes());
    bytes(&mut out, b"info");
    out.extend_from_slice(info);
    out.push(b'e');
    out
}

/// `peer_id` → port of the clients that announced.
type Swarm = Arc<Mutex<HashMap<Vec<u8>, u16>>>;

/// A `key=value` of a query string, percent-decoded.
fn query_value(query: &str, key: &str) -> Option<Vec<u8>> {
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?;
    let mut out = Vec::with_capacity(raw.len());
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Answers announces: records the client, returns every other one.
async fn tracker(listener: TcpListener, swarm: Swarm) {
    while let Ok((mut conn, _)) = listener.accept().await {
        let swarm = swarm.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let Ok(n) = conn.read(&mut buf).await else {
                return;
            };
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let target = head.split(' ').nth(1).unwrap_or("");
            let query = target.split_once('?').map_or("", |(_, q)| q);
            let peer = query_value(query, "peer_id").unwrap_or_default();
            let port = query_value(query, "port")
                .and_then(|p| String::from_utf8(p).ok()?.parse::<u16>().ok())
                .unwrap_or(0);
            let mut compact = Vec::new();
            if let Ok(mut s) = swarm.lock() {
                s.insert(peer.clone(), port);
                for (id, p) in s.iter() {
                    if *id != peer {
                        compact.extend_from_slice(&[127, 0, 0, 1]);
                        compact.extend_from_slice(&p.to_be_bytes());
                    }
                }
            }
            let mut body = b"d".to_vec();
            bytes(&mut body, b"interval");
            int(&mut body, 2);
            bytes(&mut body, b"peers");
            bytes(&mut body, &compact);
            body.push(b'e');
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(&body).await;
        });
    }
}

fn aria2c(torrent: &Path, dir: &Path, port: u16, seed: bool) -> Result<Child, BenchError> {
    let mut cmd = Command::new("aria2c");
    cmd.arg(torrent)
        .arg(format!("--dir={}", dir.display()))
        .arg(format!("--listen-port={port}"))
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--file-allocation=none",
            "--console-log-level=error",
            "--summary-interval=0",
            "--bt-tracker-connect-timeout=5",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if seed {
        cmd.args(["--check-integrity=true", "--seed-ratio=0.0"]);
    } else {
        cmd.arg("--seed-time=0");
    }
    cmd.spawn()
        .map_err(|e| setup(format!("starting aria2c: {e}")))
}

/// Kills a child when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Seconds aria2c takes to fetch `data` from another aria2c over loopback.
pub async fn aria2c_transfer_secs(dir: &Path, data: &[u8]) -> Result<f64, BenchError> {
    let free = || -> Result<u16, BenchError> {
        rusty_network::port::unused_loopback_port().map_err(|e| setup(format!("port: {e}")))
    };
    let listener = TcpListener::bind(("127.0.0.1", free()?))
        .await
        .map_err(|e| setup(format!("tracker: {e}")))?;
    let announce = format!(
        "http://{}/announce",
        listener
            .local_addr()
            .map_err(|e| setup(format!("tracker: {e}")))?
    );
    let swarm: Swarm = Arc::default();
    let tracker_task = tokio::spawn(tracker(listener, swarm.clone()));

    let (seed_dir, leech_dir) = (dir.join("seed"), dir.join("leech"));
    for d in [&seed_dir, &leech_dir] {
        std::fs::create_dir_all(d).map_err(|e| setup(format!("{}: {e}", d.display())))?;
    }
    let name = "bench.bin";
    std::fs::write(seed_dir.join(name), data).map_err(|e| setup(format!("seed file: {e}")))?;
    let file = dir.join("bench.torrent");
    std::fs::write(&file, torrent(&announce, &info(name, data)))
        .map_err(|e| setup(format!("torrent: {e}")))?;

    let _seeder = Running(aria2c(&file, &seed_dir, free()?, true)?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while swarm.lock().map(|s| s.len()).unwrap_or(0) < 1 {
        if Instant::now() > deadline {
            return Err(setup("the aria2c seeder never announced"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    let mut leecher = Running(aria2c(&file, &leech_dir, free()?, false)?);
    let status = tokio::task::spawn_blocking(move || leecher.0.wait())
        .await
        .map_err(|_| setup("waiting for aria2c"))?
        .map_err(|e| setup(format!("aria2c: {e}")))?;
    let secs = start.elapsed().as_secs_f64();
    tracker_task.abort();
    if !status.success() {
        return Err(setup(format!("the aria2c leecher failed: {status}")));
    }
    let got =
        std::fs::read(leech_dir.join(name)).map_err(|e| setup(format!("leeched file: {e}")))?;
    if got != data {
        return Err(setup("aria2c's copy differs"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_torrent_is_bencoded_with_one_hash_per_piece() {
        let data = vec![7u8; PIECE + 10];
        let i = info("f", &data);
        assert!(i.starts_with(b"d6:lengthi1048586e4:name1:f12:piece lengthi1048576e6:pieces40:"));
        assert!(i.ends_with(b"e"));
        let t = torrent("http://x/announce", &i);
        assert!(t.starts_with(b"d8:announce17:http://x/announce4:infod"));
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = "info_hash=%01%ff&peer_id=-aria2-%41B&port=6881";
        assert_eq!(query_value(q, "info_hash"), Some(vec![1, 255]));
        assert_eq!(query_value(q, "peer_id"), Some(b"-aria2-AB".to_vec()));
        assert_eq!(query_value(q, "port"), Some(b"6881".to_vec()));
        assert_eq!(query_value(q, "left"), None);
    }
}
