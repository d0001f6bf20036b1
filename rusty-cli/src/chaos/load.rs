//! The soak's load: payments between wallets at a steady rate, governance
//! proposals with masternode votes, media published and fetched through the
//! CLI as a user would, and masternode churn. Everything it does is
//! recorded for the final checks.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, Rng, RngCore};
use serde_json::{json, Value};

use super::cluster::{Cluster, NodeProc};

/// A payment a mempool accepted.
#[derive(Debug, Clone)]
pub struct Payment {
    pub txid: String,
    pub from: usize,
    /// The outpoints it spends (`txid:vout`).
    pub inputs: Vec<(String, u64)>,
}

/// A published file and what its bytes hash to.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub blake3: blake3::Hash,
    pub len: usize,
}

/// A `stream view --output` running in a child process.
pub struct Download {
    pub viewer: usize,
    pub content: usize,
    pub out: PathBuf,
    pub child: Child,
    pub started: Instant,
}

/// A live broadcast (`stream broadcast --live`) and one viewer saving it.
pub struct Live {
    pub broadcaster: Child,
    pub viewer: Child,
    pub input: blake3::Hash,
    pub bytes: Vec<u8>,
    pub len: usize,
    pub out: PathBuf,
    pub started: Instant,
}

/// What became of the downloads.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct MediaTally {
    pub published: usize,
    pub started: usize,
    pub identical: usize,
    pub differing: usize,
    /// Ended without a file (the viewer was killed, or timed out).
    pub unfinished: usize,
    pub live_streams: usize,
    pub live_identical: usize,
    pub live_differing: usize,
    /// Exited cleanly with correct bytes but missing segments.
    pub live_gapped: usize,
    pub live_unfinished: usize,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GovTally {
    pub proposals: usize,
    pub votes: usize,
    pub vote_errors: usize,
    pub registered_late: usize,
    pub revoked: usize,
}

pub struct Load {
    rng: StdRng,
    /// A receiving address of each node's wallet.
    pub addresses: Vec<String>,
    /// Nodes whose wallets send payments.
    pub senders: Vec<usize>,
    pub payments: Vec<Payment>,
    pub send_errors: usize,
    pub publisher: usize,
    pub media: Vec<Published>,
    pub downloads: Vec<Download>,
    pub live: Option<Live>,
    last_live: Option<Instant>,
    pub media_tally: MediaTally,
    pub gov: GovTally,
    /// Proposals waiting for their votes: (hash, votes still to cast by
    /// node).
    pending_votes: Vec<(String, Vec<usize>)>,
    masternodes: Vec<usize>,
    work_dir: PathBuf,
    binary: PathBuf,
    last_payment: Option<Instant>,
    last_download: Option<Instant>,
    last_proposal: Option<Instant>,
}

/// A payment every this often.
const PAYMENT_EVERY: Duration = Duration::from_secs(2);
/// A new file and a download of it every this often.
const DOWNLOAD_EVERY: Duration = Duration::from_secs(40);
/// A proposal every this often (a dev superblock cycle is 48 blocks).
const PROPOSAL_EVERY: Duration = Duration::from_secs(90);
/// A download that has not finished by then is given up.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(180);
/// A live stream of this many bytes at this rate (about 40 s) every
/// `LIVE_EVERY`.
const LIVE_BYTES: usize = 320 * 1024;
const LIVE_KBPS: u64 = 64;
const LIVE_EVERY: Duration = Duration::from_secs(150);

impl Load {
    pub fn new(seed: u64, work_dir: PathBuf, publisher: usize, masternodes: Vec<usize>) -> Load {
        Load {
            rng: rand::SeedableRng::seed_from_u64(seed ^ 0x10ad),
            addresses: Vec::new(),
            senders: Vec::new(),
            payments: Vec::new(),
            send_errors: 0,
            publisher,
            media: Vec::new(),
            downloads: Vec::new(),
            live: None,
            last_live: None,
            media_tally: MediaTally::default(),
            gov: GovTally::default(),
            pending_votes: Vec::new(),
            masternodes,
            work_dir,
            binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rusty-cli")),
            last_payment: None,
            last_download: None,
            last_proposal: Some(Instant::now()),
        }
    }

    /// One step of load; `usable(i)` says whether node `i` may be used now.
    pub fn step(&mut self, cluster: &Cluster, usable: &dyn Fn(usize) -> bool) {
        if due(&mut self.last_payment, PAYMENT_EVERY) {
            self.pay(cluster, usable);
        }
        if due(&mut self.last_proposal, PROPOSAL_EVERY) {
            self.propose(cluster, usable);
        }
        self.vote(cluster, usable);
        if due(&mut self.last_download, DOWNLOAD_EVERY) {
            self.publish_and_fetch(cluster, usable);
        }
        self.reap_downloads();
        if self.live.is_none() && due(&mut self.last_live, LIVE_EVERY) {
            self.start_live(cluster, usable);
        }
        self.reap_live(false);
    }

    /// The publisher broadcasts a random file paced like a capture; a
    /// random node saves the stream from its start.
    fn start_live(&mut self, cluster: &Cluster, usable: &dyn Fn(usize) -> bool) {
        let viewers: Vec<usize> = (0..cluster.len())
            .filter(|&i| i != self.publisher && usable(i))
            .collect();
        if !usable(self.publisher) || viewers.is_empty() {
            return;
        }
        let viewer = viewers[self.rng.gen_range(0..viewers.len())];
        let n = self.media_tally.live_streams;
        let mut bytes = vec![0u8; LIVE_BYTES];
        self.rng.fill_bytes(&mut bytes);
        let input = self.work_dir.join(format!("live-{n}.ts"));
        if std::fs::write(&input, &bytes).is_err() {
            return;
        }
        let spawned = self
            .cli_command(cluster.node(self.publisher))
            .args([
                "stream",
                "broadcast",
                "--live",
                "--bitrate",
                &LIVE_KBPS.to_string(),
            ])
            .args(["--title", &format!("chaos live {n}")])
            .arg(&input)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut broadcaster) = spawned else { return };
        // Its first line is the stream's id.
        let id = broadcaster.stdout.take().and_then(|out| {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).ok()?;
            Some(line.trim().to_string())
        });
        let Some(id) = id.filter(|i| i.len() == 64) else {
            let _ = broadcaster.kill();
            let _ = broadcaster.wait();
            return;
        };
        let out = self.work_dir.join(format!("live-{n}-node{viewer}.ts"));
        // Started with the broadcast: the file should hold it from its first
        // segment, and a viewer that missed the first ones must say so.
        let spawned = self
            .cli_command(cluster.node(viewer))
            .args(["stream", "view", &id, "--from-start", "--output"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(viewer) = spawned else {
            let _ = broadcaster.kill();
            let _ = broadcaster.wait();
            return;
        };
        self.media_tally.live_streams += 1;
        self.live = Some(Live {
            broadcaster,
            viewer,
            input: blake3::hash(&bytes),
            len: bytes.len(),
            bytes,
            out,
            started: Instant::now(),
        });
    }

    /// A live stream whose viewer ended: the saved bytes must be the
    /// broadcast's. With `force`, gives up on one still running.
    fn reap_live(&mut self, force: bool) {
        let Some(live) = &mut self.live else { return };
        let viewer_done = matches!(live.viewer.try_wait(), Ok(Some(_)));
        let overdue = live.started.elapsed() > DOWNLOAD_TIMEOUT;
        if !(viewer_done || overdue || force) {
            return;
        }
        let Some(mut live) = self.live.take() else {
            return;
        };
        let ended_ok = match live.viewer.try_wait() {
            Ok(Some(status)) => status.success(),
            _ => {
                let _ = live.viewer.kill();
                let _ = live.viewer.wait();
                false
            }
        };
        let _ = live.broadcaster.kill();
        let _ = live.broadcaster.wait();
        // Every byte saved counts even if the viewer then failed (its node
        // was killed after the end); a short file from a failed viewer is
        // unfinished, not wrong.
        let bytes = std::fs::read(&live.out).unwrap_or_default();
        if bytes.len() == live.len && blake3::hash(&bytes) == live.input {
            self.media_tally.live_identical += 1;
        } else if !in_order_pieces_of(&bytes, &live.bytes) {
            self.media_tally.live_differing += 1;
        } else if ended_ok {
            // Every saved byte is right, but pieces are missing and the
            // viewer exited 0: `stream view --output` must say so.
            self.media_tally.live_gapped += 1;
        } else {
            // Killed, stalled, or it reported the segments it missed.
            self.media_tally.live_unfinished += 1;
        }
    }

    fn pay(&mut self, cluster: &Cluster, usable: &dyn Fn(usize) -> bool) {
        let senders: Vec<usize> = self
            .senders
            .iter()
            .copied()
            .filter(|&i| usable(i))
            .collect();
        if senders.is_empty() || self.addresses.len() < 2 {
            return;
        }
        let from = senders[self.rng.gen_range(0..senders.len())];
        let mut to = self.rng.gen_range(0..self.addresses.len());
        if to == from {
            to = (to + 1) % self.addresses.len();
        }
        // 0.1 to 3 coins, in base units.
        let units = self.rng.gen_range(10_000_000..=300_000_000u64);
        let coins = units as f64 / rusty_shared_types::COIN as f64;
        let node = cluster.node(from);
        match node.call("sendtoaddress", json!([self.addresses[to], coins])) {
            Ok(Value::String(txid)) => {
                let inputs = inputs_of(node, &txid);
                self.payments.push(Payment { txid, from, inputs });
            }
            _ => self.send_errors += 1,
        }
    }

    fn propose(&mut self, cluster: &Cluster, usable: &dyn Fn(usize) -> bool) {
        let Some(&from) = self.senders.iter().find(|&&i| usable(i)) else {
            return;
        };
        let payee = self.addresses[self.publisher].clone();
        let proposal = json!({
            "title": format!("chaos payment {}", self.gov.proposals + 1),
            "type": "payment",
            "payee": payee,
            "amount": 1,
        });
        if let Ok(Value::String(hash)) = cluster.node(from).call("gov_submit", json!([proposal])) {
            self.gov.proposals += 1;
            self.pending_votes.push((hash, self.masternodes.clone()));
        }
    }

    /// Each masternode votes yes from its own node once its chain has the
    /// proposal (the voting key is in the wallet that registered it).
    fn vote(&mut self, cluster: &Cluster, usable: &dyn Fn(usize) -> bool) {
        for (hash, waiting) in &mut self.pending_votes {
            waiting.retain(|&i| {
                if !usable(i) {
                    return true;
                }
                match cluster.node(i).call("gov_vote", json!([hash, "yes"])) {
                    Ok(v) if v.as_array().is_some_and(|a| !a.is_empty()) => {
                        self.gov.votes += 1;
                        false
                    }
                    // Not mined yet on this node, or no key (revoked):
                    // ask again next time, up to the proposal's end.
                    _ => {
                        self.gov.vote_errors += 1;
                        true
                    }
                }
            });
        }
        self.pending_votes.retain(|(_, w)| !w.is_empty());
        // A proposal nobody could vote on for long is dropped from the list.
        if self.pending_votes.len() > 4 {
            self.pending_votes.remove(0);
        }
    }

    fn publish_and_fetch(&mut self, cluster: &Cluster, usable: &dyn Fn(usize) -> bool) {
        if !usable(self.publisher) {
            return;
        }
        let len = self.rng.gen_range(256 * 1024..=2 * 1024 * 1024);
        let mut bytes = vec![0u8; len];
        self.rng.fill_bytes(&mut bytes);
        let n = self.media.len();
        let path = self.work_dir.join(format!("media-{n}.bin"));
        if std::fs::write(&path, &bytes).is_err() {
            return;
        }
        let out = self.cli(
            cluster.node(self.publisher),
            &[
                "stream",
                "publish",
                &path.to_string_lossy(),
                "--title",
                &format!("chaos file {n}"),
            ],
        );
        let Some(id) = out else { return };
        self.media.push(Published {
            id,
            blake3: blake3::hash(&bytes),
            len,
        });
        self.media_tally.published += 1;
        // Two viewers fetch it.
        let viewers: Vec<usize> = (0..cluster.len())
            .filter(|&i| i != self.publisher && usable(i))
            .collect();
        for _ in 0..2.min(viewers.len()) {
            let viewer = viewers[self.rng.gen_range(0..viewers.len())];
            if self
                .downloads
                .iter()
                .any(|d| d.viewer == viewer && d.content == n)
            {
                continue;
            }
            let out = self.work_dir.join(format!("view-{n}-node{viewer}.bin"));
            let node = cluster.node(viewer);
            let child = self
                .cli_command(node)
                .args(["stream", "view", &self.media[n].id, "--output"])
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            if let Ok(child) = child {
                self.media_tally.started += 1;
                self.downloads.push(Download {
                    viewer,
                    content: n,
                    out,
                    child,
                    started: Instant::now(),
                });
            }
        }
    }

    /// Checks the downloads that ended: byte-identical or not.
    fn reap_downloads(&mut self) {
        let mut i = 0;
        while i < self.downloads.len() {
            let d = &mut self.downloads[i];
            let done = match d.child.try_wait() {
                Ok(Some(status)) => Some(status.success()),
                Ok(None) if d.started.elapsed() > DOWNLOAD_TIMEOUT => {
                    let _ = d.child.kill();
                    let _ = d.child.wait();
                    Some(false)
                }
                Ok(None) => None,
                Err(_) => Some(false),
            };
            let Some(ok) = done else {
                i += 1;
                continue;
            };
            let d = self.downloads.swap_remove(i);
            let expected = &self.media[d.content];
            match std::fs::read(&d.out) {
                Ok(bytes) if ok => {
                    if bytes.len() == expected.len && blake3::hash(&bytes) == expected.blake3 {
                        self.media_tally.identical += 1;
                    } else {
                        self.media_tally.differing += 1;
                    }
                }
                _ => self.media_tally.unfinished += 1,
            }
        }
    }

    /// Waits up to `limit` for the downloads still running (the end).
    pub fn finish_downloads(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.downloads.is_empty() && Instant::now() < deadline {
            self.reap_downloads();
            std::thread::sleep(Duration::from_millis(250));
        }
        for d in &mut self.downloads {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
        self.media_tally.unfinished += self.downloads.len();
        self.downloads.clear();
        let deadline = Instant::now() + limit;
        while self.live.is_some() && Instant::now() < deadline {
            self.reap_live(false);
            std::thread::sleep(Duration::from_millis(250));
        }
        self.reap_live(true);
    }

    fn cli_command(&self, node: &NodeProc) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(["--dev", "--datadir"])
            .arg(&node.dir)
            .args(["--rpc-url", &format!("http://127.0.0.1:{}", node.rpc_port)]);
        c
    }

    /// Runs a client command; its trimmed stdout on success.
    fn cli(&self, node: &NodeProc, args: &[&str]) -> Option<String> {
        let out = self.cli_command(node).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// Whether an action last done at `last` (never: `None`) is due again
/// after `every`; if so, stamps it now. (No `Instant` in the past is made up:
/// `Instant::now() - 1 h` panics on a machine up for less than an hour.)
fn due(last: &mut Option<Instant>, every: Duration) -> bool {
    if last.is_some_and(|t| t.elapsed() < every) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

/// Whether `saved` is pieces of `input` in order: each 64 KiB piece (the
/// broadcaster pushes 64 KiB at a time) found at a later 64 KiB-aligned
/// offset than the one before.
fn in_order_pieces_of(saved: &[u8], input: &[u8]) -> bool {
    const PIECE: usize = 64 * 1024;
    let mut next = 0;
    for piece in saved.chunks(PIECE) {
        let found = (next..input.len().div_ceil(PIECE)).find(|&k| {
            input.get(k * PIECE..(k * PIECE + piece.len()).min(input.len())) == Some(piece)
        });
        match found {
            Some(k) => next = k + 1,
            None => return false,
        }
    }
    true
}

/// The outpoints a transaction in `node`'s mempool spends.
fn inputs_of(node: &NodeProc, txid: &str) -> Vec<(String, u64)> {
    let Ok(tx) = node.call("getrawtransaction", json!([txid, true])) else {
        return Vec::new();
    };
    tx["vin"]
        .as_array()
        .map(|vin| {
            vin.iter()
                .filter_map(|i| Some((i["txid"].as_str()?.to_string(), i["vout"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::in_order_pieces_of;

    #[test]
    fn saved_live_bytes_are_judged_piece_by_piece() {
        let input: Vec<u8> = (0..5 * 64 * 1024).map(|i| (i / 64 / 1024) as u8).collect();
        let piece = |k: usize| &input[k * 65536..(k + 1) * 65536];
        assert!(in_order_pieces_of(&input, &input));
        assert!(in_order_pieces_of(&[], &input));
        // Segments 0 and 4: a gap, every byte right.
        assert!(in_order_pieces_of(&[piece(0), piece(4)].concat(), &input));
        // Out of order, or a byte wrong: differing.
        assert!(!in_order_pieces_of(&[piece(2), piece(1)].concat(), &input));
        let mut bad = piece(3).to_vec();
        bad[7] ^= 1;
        assert!(!in_order_pieces_of(&bad, &input));
    }
}
