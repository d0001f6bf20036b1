//! The CPU miner.
//!
//! Nonce search itself is [`rusty_core::pow::search`]. [`Miner`] runs `threads` OS
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

use rusty_shared_types::Address;
use tracing::{info, warn};

use rusty_core::pow::search::search;

use crate::service::ChainHandle;

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
            let now = rusty_core::now();
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
            let template =
                match handle.blocking_block_template(payout, extra_nonce.to_le_bytes().to_vec()) {
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
            match handle.blocking_submit_block(block) {
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
