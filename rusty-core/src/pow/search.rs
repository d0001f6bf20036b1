//! Proof-of-work search: grinding nonces until a header's hash meets its
//! target. Used by the CPU miner (threads in `rusty-node`), by
//! `generatetoaddress` and by tests; it never touches chain state.

use std::sync::atomic::{AtomicBool, Ordering};

use ruint::aliases::U256;
use rusty_shared_types::{block::HEADER_NONCE_OFFSET, BlockHeader, Domain, HEADER_SIZE};

use super::hash_meets_target;

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
pub fn search(
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
        if i & 4095 == 0 && stop.load(Ordering::Relaxed) {
            return None;
        }
        buf[HEADER_NONCE_OFFSET..HEADER_NONCE_OFFSET + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut h = base.clone();
        h.update(&buf);
        let hash = rusty_shared_types::Hash256(*h.finalize().as_bytes());
        if hash_meets_target(&hash, target) {
            return Some(nonce);
        }
        nonce = nonce.wrapping_add(stride);
    }
    None
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
        assert!(hash_meets_target(&header.hash(), &target));
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
        assert!(hash_meets_target(&h.hash(), &target));
    }
}
