//! Supervision of a node's long-running work, in the manner of reth's
//! `TaskManager::spawn_critical`.
//!
//! A node is a handful of tasks (tokio) and threads (the chain thread and
//! the miner, which block). Each one whose end would leave the node half
//! alive is spawned *critical* through a [`TaskExecutor`]: if it panics, or
//! returns while the node is not shutting down, the executor records one
//! [`CriticalFailure`] and cancels the node's one [`CancellationToken`].
//! [`crate::node::Node::wait`] then resolves with that failure, the node
//! shuts down in order, and `rusty-cli node` prints one error line and exits
//! non-zero instead of running on without, say, its chain thread.
//!
//! The same token is the node's single shutdown signal: a task spawned with
//! [`TaskExecutor::spawn_critical`] stops at its next await point once it
//! is cancelled; one spawned with [`TaskExecutor::spawn_critical_graceful`]
//! (and a critical thread) runs on until its own stop signal, so it can
//! wind down what it owns. The supervisors do not report tasks that end
//! after the token.

use std::{
    any::Any,
    fmt,
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{Arc, Mutex},
};

use futures::FutureExt;
use tokio::sync::watch;
pub use tokio_util::sync::CancellationToken;
use tracing::error;

/// A critical task that ended while the node was running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("critical task `{task}` {reason}; the node stopped")]
pub struct CriticalFailure {
    /// The task's name (`chain`, `p2p`, `llmq`, …).
    pub task: &'static str,
    /// `panicked: <message>` or `ended unexpectedly`.
    pub reason: String,
}

/// Spawns supervised tasks and threads. Cloneable; every clone reports to
/// the same [`TaskManager`].
#[derive(Clone)]
pub struct TaskExecutor {
    token: CancellationToken,
    /// The first failure wins; later ones are logged only.
    failure: Arc<Mutex<Option<CriticalFailure>>>,
    failed: watch::Sender<bool>,
}

impl fmt::Debug for TaskExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskExecutor")
            .field("cancelled", &self.token.is_cancelled())
            .finish()
    }
}

/// Owns the shutdown token and learns of critical failures.
#[derive(Debug)]
pub struct TaskManager {
    executor: TaskExecutor,
    failed: watch::Receiver<bool>,
}

impl Default for TaskManager {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskManager {
    pub fn new() -> TaskManager {
        let (failed_tx, failed) = watch::channel(false);
        TaskManager {
            executor: TaskExecutor {
                token: CancellationToken::new(),
                failure: Arc::new(Mutex::new(None)),
                failed: failed_tx,
            },
            failed,
        }
    }

    pub fn executor(&self) -> TaskExecutor {
        self.executor.clone()
    }

    /// The node's shutdown signal.
    pub fn token(&self) -> CancellationToken {
        self.executor.token.clone()
    }

    /// Starts shutting down: every supervised task stops at its next await
    /// point, and tasks ending from now on are not failures.
    pub fn cancel(&self) {
        self.executor.token.cancel();
    }

    /// The failure that stopped the node, if one did.
    pub fn failure(&self) -> Option<CriticalFailure> {
        self.executor
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves with the first critical failure (never, if none happens).
    pub async fn wait_for_failure(&self) -> CriticalFailure {
        let mut rx = self.failed.clone();
        loop {
            if *rx.borrow_and_update() {
                if let Some(f) = self.failure() {
                    return f;
                }
            }
            if rx.changed().await.is_err() {
                // The executor lives in `self`: the sender cannot go away.
                futures::future::pending::<()>().await;
            }
        }
    }
}

impl TaskExecutor {
    /// The node's shutdown signal.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Spawns `fut` as a critical tokio task named `name`. It stops when the
    /// token is cancelled; if it panics or returns before that, the node
    /// stops with a [`CriticalFailure`].
    pub fn spawn_critical<F>(&self, name: &'static str, fut: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                r = AssertUnwindSafe(fut).catch_unwind() => r,
                _ = this.token.cancelled() => return,
            };
            this.ended(name, outcome);
        })
    }

    /// Spawns `fut` as a critical tokio task that the token does not
    /// interrupt: it has its own stop signal and ends through it, winding
    /// down what it owns (the media task ends its downloads and streams so
    /// the content store closes). A panic or an early return while the
    /// node runs stops the node.
    pub fn spawn_critical_graceful<F>(
        &self,
        name: &'static str,
        fut: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = AssertUnwindSafe(fut).catch_unwind().await;
            this.ended(name, outcome);
        })
    }

    /// Spawns `f` on a critical OS thread named `name` (work that blocks:
    /// the chain thread, the miner). The thread is not interrupted by the
    /// token (it has its own stop signal); a panic or an early return
    /// while the node runs stops the node.
    pub fn spawn_critical_thread<F>(
        &self,
        name: &'static str,
        f: F,
    ) -> std::io::Result<std::thread::JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        let this = self.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(f));
                this.ended(name, outcome);
            })
    }

    fn ended(&self, task: &'static str, outcome: Result<(), Box<dyn Any + Send>>) {
        if self.token.is_cancelled() {
            return;
        }
        let reason = match outcome {
            Ok(()) => "ended unexpectedly".to_owned(),
            Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
        };
        let failure = CriticalFailure { task, reason };
        // Record and stop first, log last: a log line that cannot be
        // written (a full disk) must not lose the failure (the chaos soak
        // found a node that kept running without its p2p task that way).
        let line = failure.to_string();
        {
            let mut first = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(failure);
            }
        }
        self.failed.send_replace(true);
        self.token.cancel();
        error!(target: "node", task, "{line}");
    }
}

/// The message of a panic payload (`panic!("…")` carries a `&str` or a
/// `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_and_cancels_the_rest() {
        let tasks = TaskManager::new();
        let ex = tasks.executor();
        let token = tasks.token();
        let sibling = ex.spawn_critical("sibling", futures::future::pending());
        ex.spawn_critical("p2p", async { panic!("boom") });
        let failure = tokio::time::timeout(Duration::from_secs(5), tasks.wait_for_failure())
            .await
            .expect("reported");
        assert_eq!(failure.task, "p2p");
        assert_eq!(failure.reason, "panicked: boom");
        assert!(token.is_cancelled());
        // The sibling stopped because the token was cancelled, and its end
        // is not a second failure.
        tokio::time::timeout(Duration::from_secs(5), sibling)
            .await
            .expect("sibling stops")
            .expect("no panic");
        assert_eq!(tasks.failure().map(|f| f.task), Some("p2p"));
    }

    #[tokio::test]
    async fn a_task_that_returns_early_is_a_failure() {
        let tasks = TaskManager::new();
        tasks.executor().spawn_critical("media", async {});
        let failure = tokio::time::timeout(Duration::from_secs(5), tasks.wait_for_failure())
            .await
            .expect("reported");
        assert_eq!(
            failure.to_string(),
            "critical task `media` ended unexpectedly; the node stopped"
        );
    }

    #[tokio::test]
    async fn a_graceful_task_outlives_the_token_until_its_own_stop() {
        let tasks = TaskManager::new();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (wound_down_tx, wound_down) = tokio::sync::oneshot::channel();
        let t = tasks
            .executor()
            .spawn_critical_graceful("media", async move {
                let _ = stopped.wait_for(|s| *s).await;
                let _ = wound_down_tx.send(());
            });
        tasks.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!t.is_finished(), "the token does not interrupt it");
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), wound_down)
            .await
            .expect("ends on its stop signal")
            .expect("ran to its end");
        t.await.expect("no panic");
        assert_eq!(tasks.failure(), None, "ending after shutdown is no failure");

        let early = TaskManager::new();
        early
            .executor()
            .spawn_critical_graceful("media", async { panic!("boom") });
        let failure = tokio::time::timeout(Duration::from_secs(5), early.wait_for_failure())
            .await
            .expect("reported");
        assert_eq!(failure.reason, "panicked: boom");
    }

    #[tokio::test]
    async fn tasks_ending_after_shutdown_are_not_failures() {
        let tasks = TaskManager::new();
        let ex = tasks.executor();
        let token = tasks.token();
        let t = ex.spawn_critical("p2p", async move { token.cancelled().await });
        let th = ex.spawn_critical_thread("chain", || {}).expect("thread");
        // The thread ended before shutdown: that one is a failure.
        th.join().expect("joined");
        assert_eq!(tasks.failure().map(|f| f.task), Some("chain"));
        tasks.cancel();
        t.await.expect("no panic");
        assert_eq!(tasks.failure().map(|f| f.task), Some("chain"));

        let quiet = TaskManager::new();
        quiet.cancel();
        quiet
            .executor()
            .spawn_critical_thread("chain", || panic!("after shutdown"))
            .expect("thread")
            .join()
            .expect("caught");
        assert_eq!(quiet.failure(), None);
    }
}
