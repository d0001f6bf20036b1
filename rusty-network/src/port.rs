//! Choosing a loopback port for a process that is about to be started.
//!
//! The usual trick, binding port 0 and releasing it, hands back a port from the kernel's
//! ephemeral range. Between the release and the child's own bind, any outgoing connection on
//! the machine may be given that very port as its local end, and the child then fails with
//! "address in use" (a chaos soak lost a node at start-up exactly so). Ports below the
//! ephemeral range are only ever taken by an explicit bind, so that race cannot happen there.
//!
//! Each candidate is checked by binding it without `SO_REUSEADDR` (std's `TcpListener` sets
//! it): a port that a stopped server left in `TIME_WAIT` binds with the option and fails
//! without it, as the child's server (jsonrpsee, axum) would fail. Ports handed out in
//! earlier test processes come back round in a test run, so this matters.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    net::{Ipv4Addr, TcpListener},
    sync::atomic::{AtomicU32, Ordering},
};

/// The lowest port handed out; below it live well-known and registered services.
const FLOOR: u16 = 10_000;

/// Where the search of this process continues, so one process (a test cluster picking twenty
/// ports before starting anything) never gets the same port twice.
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback TCP port that nobody listens on now, below the kernel's ephemeral range.
///
/// Processes started side by side (parallel tests) start their search at random places, and
/// each candidate is checked by binding it, so two of them rarely meet and never silently.
pub fn unused_loopback_port() -> std::io::Result<u16> {
    let span = u32::from(ephemeral_low().saturating_sub(FLOOR).max(1));
    // The first call in a process starts at a random place; later ones go on
    // from where the last stopped.
    let random = random_below(span);
    let start = match NEXT.compare_exchange(u32::MAX, random, Ordering::Relaxed, Ordering::Relaxed)
    {
        Ok(_) => random,
        Err(current) => current % span,
    };
    if let Some(offset) = first_unused(start, span) {
        NEXT.store((offset + 1) % span, Ordering::Relaxed);
        return Ok(FLOOR + offset as u16);
    }
    // Everything below the ephemeral range is taken: fall back to the kernel's choice.
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The first offset from `start` (wrapping within `span`) whose port can be bound now.
fn first_unused(start: u32, span: u32) -> Option<u32> {
    (0..span)
        .map(|step| (start % span + step) % span)
        .find(|&offset| bindable(FLOOR + offset as u16))
}

/// Whether a server could bind `port` now: bound without `SO_REUSEADDR`, so a
/// `TIME_WAIT` left on it counts as taken.
fn bindable(port: u16) -> bool {
    tokio::net::TcpSocket::new_v4()
        .and_then(|socket| {
            socket.set_reuseaddr(false)?;
            socket.bind((Ipv4Addr::LOCALHOST, port).into())
        })
        .is_ok()
}

/// The first port of the ephemeral range (Linux's `ip_local_port_range`, else IANA's 49152).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .filter(|&low| low > FLOOR)
        .unwrap_or(49_152)
}

fn random_below(bound: u32) -> u32 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    (hasher.finish() % u64::from(bound)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_never_repeat_in_a_process() {
        let low = ephemeral_low();
        let ports: Vec<u16> = (0..50).map(|_| unused_loopback_port().unwrap()).collect();
        for &port in &ports {
            assert!((FLOOR..low).contains(&port), "{port} not in {FLOOR}..{low}");
        }
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
    }

    #[test]
    fn searches_start_at_random_places() {
        // Each process's first call draws once; a fixed start would make
        // parallel test processes collide on the same ports.
        let starts: std::collections::HashSet<u32> = (0..8).map(|_| random_below(20_000)).collect();
        assert!(starts.len() > 1, "{starts:?}");
    }

    #[test]
    fn a_port_someone_listens_on_is_skipped() {
        let port = unused_loopback_port().unwrap();
        let _held = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(!bindable(port));
        let span = u32::from(ephemeral_low() - FLOOR);
        let offset = first_unused(u32::from(port - FLOOR), span).unwrap();
        assert_ne!(FLOOR + offset as u16, port);
    }
}
