//! Bulk chunk I/O on threads of its own, at a lower CPU priority than the
//! rest of the node.
//!
//! Verifying and writing a downloaded run of chunks, and reading a run to
//! upload, are most of a transfer's CPU (BLAKE3, page-cache copies). On
//! tokio's blocking pool they competed as equals with everything else, so
//! a block or a ChainLock arriving during a transfer waited for the cores
//! (docs/performance.md, media). Here they run on [`THREADS`] threads
//! under Linux's `SCHED_IDLE` policy (nice [`NICE`] where that fails):
//! when the cores are contended the kernel runs the node's other work
//! first, and when they are not, media gets them all. Elsewhere the
//! threads keep the default priority.
//!
//! Callers are bounded (a download's write window, the serving slots, the
//! data channel's read-ahead), so the queue needs no bound of its own.

use std::{
    panic::AssertUnwindSafe,
    sync::{mpsc, Arc, Mutex, OnceLock},
};

use tokio::sync::oneshot;
use tracing::warn;

use super::MediaError;

/// Threads in the pool (the bench machine has two cores; more would only
/// queue on them).
pub const THREADS: usize = 2;
/// Their niceness: 10 gets about a tenth of a core's time against work at
/// the default 0, and all of it when nothing else runs.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

fn queue() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("media-io-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only to take a job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panicking job fails its caller (its reply
                            // is dropped), not the thread.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                warn!(target: "media", error = %e, "media I/O thread not started");
            }
        }
        tx
    })
}

/// Where the direct data channel's connections run (both ends: the
/// viewer's reads, the provider's writes): a runtime of its own, its
/// [`THREADS`] threads (`media-net-*`) at the I/O pool's priority.
/// Copying a transfer's bytes through the sockets is kernel time charged
/// to the thread doing it; on the node's runtime that was the workers
/// which also carry blocks, gossip and RPC. `None` if it could not be
/// built (the caller then uses the current runtime).
pub(crate) fn net_runtime() -> Option<&'static tokio::runtime::Handle> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(THREADS)
                .thread_name("media-net")
                .on_thread_start(lower_priority)
                .enable_all()
                .build()
                .map_err(
                    |e| warn!(target: "media", error = %e, "data channel on the node's runtime"),
                )
                .ok()
        })
        .as_ref()
        .map(tokio::runtime::Runtime::handle)
}

/// Runs `task` (owning the connection `sock`) on [`net_runtime`]: the
/// socket moves to that runtime's reactor (a socket that cannot move is
/// dropped, which the other end sees as a closed channel).
pub(crate) fn spawn_on_net<F, Fut>(sock: tokio::net::TcpStream, task: F)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(rt) = net_runtime() else {
        tokio::spawn(task(sock));
        return;
    };
    match sock.into_std() {
        Ok(std_sock) => {
            rt.spawn(async move {
                match tokio::net::TcpStream::from_std(std_sock) {
                    Ok(sock) => task(sock).await,
                    Err(e) => warn!(target: "media", error = %e, "data channel connection lost"),
                }
            });
        }
        Err(e) => warn!(target: "media", error = %e, "data channel connection lost"),
    }
}

/// Puts the calling thread on `SCHED_IDLE`, with nice [`NICE`] where that
/// fails ([`crate::priority`]).
///
/// Nice 10 alone left blocks beside a transfer about 2 × their idle time at
/// p95: a block's threads woke behind a media thread that kept the core
/// until its time slice ran out (perf sched showed a core idle while a
/// woken runtime thread waited in the other's queue). The kernel preempts
/// a `SCHED_IDLE` thread at once for any normal thread that wakes.
fn lower_priority() {
    if let Err(e) = crate::priority::run_when_idle(NICE) {
        warn!(target: "media", error = %e, "media I/O not fully below the node's other work");
    }
}

/// Runs `f` on the pool; [`MediaError::Stopped`] if it panicked or no
/// thread could be started.
pub(crate) async fn low_priority<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
) -> Result<T, MediaError> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    queue().send(job).map_err(|_| MediaError::Stopped)?;
    rx.await.map_err(|_| MediaError::Stopped)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    use crate::priority::tests::{niceness, policy, SCHED_IDLE, SCHED_OTHER};

    #[tokio::test]
    async fn jobs_run_on_the_pool_and_a_panic_fails_only_its_caller() {
        let got = low_priority(|| Ok(std::thread::current().name().map(str::to_owned)))
            .await
            .expect("runs");
        assert!(got.is_some_and(|n| n.starts_with("media-io-")));
        let panicked = low_priority::<()>(|| panic!("a bad job")).await;
        assert!(matches!(panicked, Err(MediaError::Stopped)));
        // The threads survive it.
        for _ in 0..2 * THREADS {
            assert_eq!(low_priority(|| Ok(7)).await.expect("runs"), 7);
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_pool_runs_below_the_default_priority() {
        let (outside, outside_policy) = (niceness(), policy());
        let (inside, inside_policy) = low_priority(|| Ok((niceness(), policy())))
            .await
            .expect("runs");
        assert_eq!(outside_policy, SCHED_OTHER);
        assert_eq!(inside_policy, SCHED_IDLE, "the pool's policy");
        assert!(
            inside >= outside + NICE.min(19 - outside),
            "nice {inside} vs {outside}"
        );
    }
}
