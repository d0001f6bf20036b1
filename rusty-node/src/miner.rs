//! The CPU miner.
//!
//! Nonce search itself is [`rusty_core::pow::search`]. [`Miner`] runs `threads` OS
//! threads on a template from the chain service; each thread walks its own
//! stride of the nonce space, and all stop as soon as one finds a block or
//! the tip moves (a `watch` channel), so no work is wasted on a stale parent.
//!
//! A miner that hashes continuously (every network with difficulty
//! adjustment) hashes only on CPU time nothing else wants, as cpuminer's
//! threads do: Linux's `SCHED_IDLE` ([`rusty_media::priority`]). At the
//! default priority its threads held cores the node's own block validation,
//! relay and RPC then waited for, and media's bulk I/O (already at
//! `SCHED_IDLE`) got nothing at all on a mining node (docs/performance.md,
//! media). On an otherwise idle machine the hash rate is the same.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Once,
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
    /// difficulty adjustment, where each block takes a few hashes). Such a
    /// miner hashes for microseconds a block and keeps the default
    /// priority, so its blocks come on time on a loaded machine (a
    /// localnet, the tests); any other hashes at idle priority.
    pub pace_to_spacing: bool,
}

/// Niceness of the hashing threads where `SCHED_IDLE` cannot be set.
const HASHING_NICE: i32 = 19;

/// Moves the calling hashing thread below all other work (see the module
/// docs); says once if it could not.
fn hash_when_idle() {
    static WARNED: Once = Once::new();
    if let Err(e) = rusty_media::priority::run_when_idle(HASHING_NICE) {
        WARNED.call_once(|| {
            warn!(target: "miner", error = %e, "mining threads not fully below the node's other work");
        });
    }
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
        let idle_priority = !config.pace_to_spacing;
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
                            if idle_priority {
                                hash_when_idle();
                            }
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
