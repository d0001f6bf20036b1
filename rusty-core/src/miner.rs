//! Proof-of-work search and the CPU miner.
//!
//! [`solve`] grinds nonces on one thread. [`Miner`] runs `threads` OS
//! threads on a template from the chain service; each thread walks its own
//! stride of the nonce space, and all stop as soon as one finds a block or
//! the tip moves (a `watch` channel), so no work is wasted on a stale parent.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use ruint::aliases::U256;
use rusty_shared_types::{block::HEADER_NONCE_OFFSET, Address, BlockHeader, Domain, HEADER_SIZE};
use tracing::{info, warn};

use crate::{pow, service::ChainHandle};

/// Searches nonces from the header's current nonce for up to `max_tries`
/// hashes; on success leaves the winning nonce in the header.
pub fn solve(header: &mut BlockHeader, target: &U256, max_tries: u64) -> Option<u64> {
    let found = search(
        header,
        target,
        header.nonce,
        1,
        max_tries,
        &AtomicBool::new(false),
    )?;
    header.nonce = found;
    Some(found)
}

/// Tries nonces `start, start+stride, …` until one meets `target`, `tries`
/// run out or `stop` is set. Hashes the fixed header bytes in place: only
/// the nonce changes between attempts.
fn search(
    header: &BlockHeader,
    target: &U256,
    start: u64,
    stride: u64,
    tries: u64,
    stop: &AtomicBool,
) -> Option<u64> {
    let mut buf = [0u8; HEADER_SIZE];
    header.write_fixed(&mut buf);
    let base = Domain::Header.hasher();
    let mut nonce = start;
    for i in 0..tries {
        if i % 4096 == 0 && stop.load(Ordering::Relaxed) {
            return None;
        }
        buf[HEADER_NONCE_OFFSET..HEADER_NONCE_OFFSET + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut h = base.clone();
        h.update(&buf);
        let hash = rusty_shared_types::Hash256(*h.finalize().as_bytes());
        if pow::hash_meets_target(&hash, target) {
            return Some(nonce);
        }
        nonce = nonce.wrapping_add(stride);
    }
    None
}

/// Mining configuration.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    pub threads: usize,
    pub payout: Address,
    /// Wait until a block is due before mining the next (networks without
    /// difficulty adjustment, where each block takes a few hashes).
    pub pace_to_spacing: bool,
}

/// Hash rate and blocks found, for `getmininginfo`.
#[derive(Debug, Default)]
pub struct MinerStats {
    pub hashes: AtomicU64,
    pub blocks: AtomicU64,
    pub running: AtomicBool,
}

/// The continuous CPU miner.
#[derive(Debug)]
pub struct Miner;

impl Miner {
    /// Runs until `shutdown` is set. Blocking: call from a dedicated thread.
    pub fn run(
        handle: ChainHandle,
        config: MinerConfig,
        stats: Arc<MinerStats>,
        shutdown: Arc<AtomicBool>,
    ) {
        let threads = config.threads.max(1);
        stats.running.store(true, Ordering::Relaxed);
        info!(target: "miner", threads, payout = %config.payout, "miner started");
        let mut tip_rx = handle.subscribe_tip();
        let mut extra_nonce: u64 = 0;
        while !shutdown.load(Ordering::Relaxed) {
            let now = crate::now();
            let tip_time = tip_rx.borrow_and_update().time;
            if config.pace_to_spacing {
                let due = tip_time.saturating_add(handle.params().target_spacing);
                if now < due {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
            extra_nonce = extra_nonce.wrapping_add(1);
            let payout = config.payout.lock_script();
            let template = match handle.blocking_call(move |s| {
                s.block_template(&payout, now, extra_nonce.to_le_bytes().to_vec())
            }) {
                Ok(t) => t,
                Err(_) => break,
            };
            let stop = Arc::new(AtomicBool::new(false));
            let found: Option<u64> = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads as u64)
                    .map(|i| {
                        let stop = stop.clone();
                        let header = &template.block.header;
                        let target = &template.target;
                        let stats = &stats;
                        let shutdown = &shutdown;
                        scope.spawn(move || {
                            // Rebuild the template every ~second of hashing so
                            // the time and the mempool stay fresh.
                            let batch = 200_000u64;
                            let r = search(header, target, i, threads as u64, batch, &stop);
                            stats.hashes.fetch_add(batch, Ordering::Relaxed);
                            if r.is_some() || shutdown.load(Ordering::Relaxed) {
                                stop.store(true, Ordering::Relaxed);
                            }
                            r
                        })
                    })
                    .collect();
                let watcher_stop = stop.clone();
                let rx = tip_rx.clone();
                scope.spawn(move || {
                    while !watcher_stop.load(Ordering::Relaxed) {
                        if rx.has_changed().unwrap_or(true) {
                            watcher_stop.store(true, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
                let results: Vec<Option<u64>> = workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or(None))
                    .collect();
                stop.store(true, Ordering::Relaxed);
                results.into_iter().flatten().next()
            });
            let Some(nonce) = found else { continue };
            let mut block = template.block;
            block.header.nonce = nonce;
            let hash = block.hash();
            let height = template.height;
            match handle.blocking_call(move |s| s.submit_block(block, crate::now())) {
                Ok(Ok(_)) => {
                    stats.blocks.fetch_add(1, Ordering::Relaxed);
                    info!(target: "miner", %hash, height, "mined a block");
                }
                Ok(Err(e)) => warn!(target: "miner", %hash, error = %e, "mined block rejected"),
                Err(_) => break,
            }
        }
        stats.running.store(false, Ordering::Relaxed);
        info!(target: "miner", "miner stopped");
    }
}

#[cfg(test)]
mod tests {
    use rusty_shared_types::Network;

    use super::*;

    #[test]
    fn solve_meets_the_target_and_respects_max_tries() {
        let mut header = Network::Dev.params().genesis_block().header;
        // About one hash in 2^8 meets this target.
        let target = U256::MAX >> 8;
        let nonce = solve(&mut header, &target, 1 << 20).expect("found");
        assert_eq!(header.nonce, nonce);
        assert!(pow::hash_meets_target(&header.hash(), &target));
        // An impossible target gives up after max_tries.
        let mut h2 = header.clone();
        assert_eq!(solve(&mut h2, &U256::ZERO, 1000), None);
    }

    #[test]
    fn search_stops_when_asked() {
        let header = Network::Dev.params().genesis_block().header;
        let stop = AtomicBool::new(true);
        assert_eq!(search(&header, &U256::ZERO, 0, 1, u64::MAX, &stop), None);
    }

    #[test]
    fn strided_search_agrees_with_the_header_hash() {
        let header = Network::Dev.params().genesis_block().header;
        let target = U256::MAX >> 6;
        let stop = AtomicBool::new(false);
        let n = search(&header, &target, 1, 2, 1 << 20, &stop).expect("found");
        assert_eq!(n % 2, 1, "odd stride from 1");
        let mut h = header.clone();
        h.nonce = n;
        assert!(pow::hash_meets_target(&h.hash(), &target));
    }
}
