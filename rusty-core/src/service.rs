//! The chain service: one OS thread owns the [`NodeState`] and runs the jobs
//! that [`ChainHandle`]s send it over a bounded channel, one at a time.
//!
//! Validation and RocksDB writes block, so the owner is a plain thread, not a
//! tokio task; async callers await a `oneshot` reply. A job is a closure over
//! `&mut NodeState`, which keeps the command set open (RPC methods, the miner
//! and tests each send what they need) while the state itself never leaves
//! its thread.

use std::thread::JoinHandle;

use rusty_shared_types::ChainParams;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::info;

use crate::state::{NodeState, TipInfo};

type Job = Box<dyn FnOnce(&mut NodeState) -> Flow + Send>;

enum Flow {
    Continue,
    Stop,
}

/// A job running `f` and the receiver of its result. A caller that gave up
/// waiting just drops the receiver; the job's send then fails harmlessly.
fn reply_job<R, F>(f: F) -> (Job, oneshot::Receiver<R>)
where
    R: Send + 'static,
    F: FnOnce(&mut NodeState) -> R + Send + 'static,
{
    let (reply, rx) = oneshot::channel();
    let job: Job = Box::new(move |s| {
        let _ = reply.send(f(s));
        Flow::Continue
    });
    (job, rx)
}

/// Depth of the command queue; senders wait when it is full.
const QUEUE_DEPTH: usize = 1024;

/// The chain service is gone (the node is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the chain service has stopped")]
pub struct ServiceStopped;

/// A cloneable handle to the chain service.
#[derive(Debug, Clone)]
pub struct ChainHandle {
    tx: mpsc::Sender<Job>,
    params: &'static ChainParams,
    tip: watch::Receiver<TipInfo>,
    blocks: broadcast::Sender<TipInfo>,
    txs: broadcast::Sender<rusty_shared_types::Transaction>,
}

impl ChainHandle {
    /// Runs `f` on the state and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, ServiceStopped>
    where
        R: Send + 'static,
        F: FnOnce(&mut NodeState) -> R + Send + 'static,
    {
        let (job, rx) = reply_job(f);
        self.tx.send(job).await.map_err(|_| ServiceStopped)?;
        rx.await.map_err(|_| ServiceStopped)
    }

    /// [`ChainHandle::call`] for threads outside the async runtime.
    pub fn blocking_call<R, F>(&self, f: F) -> Result<R, ServiceStopped>
    where
        R: Send + 'static,
        F: FnOnce(&mut NodeState) -> R + Send + 'static,
    {
        let (job, rx) = reply_job(f);
        self.tx.blocking_send(job).map_err(|_| ServiceStopped)?;
        rx.blocking_recv().map_err(|_| ServiceStopped)
    }

    /// Asks the service to flush and stop after the jobs already queued.
    pub async fn shutdown(&self) {
        let job: Job = Box::new(|_| Flow::Stop);
        let _ = self.tx.send(job).await;
    }

    /// [`ChainHandle::shutdown`] without waiting for queue space; false if
    /// the queue is full or the service already stopped.
    pub fn try_shutdown(&self) -> bool {
        let job: Job = Box::new(|_| Flow::Stop);
        self.tx.try_send(job).is_ok()
    }

    pub fn params(&self) -> &'static ChainParams {
        self.params
    }

    /// The latest tip (miners).
    pub fn subscribe_tip(&self) -> watch::Receiver<TipInfo> {
        self.tip.clone()
    }

    /// Every new tip (RPC subscriptions).
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<TipInfo> {
        self.blocks.subscribe()
    }

    /// Every transaction accepted into the mempool (relay).
    pub fn subscribe_txs(&self) -> broadcast::Receiver<rusty_shared_types::Transaction> {
        self.txs.subscribe()
    }
}

/// Starts the service thread. Joining the returned handle waits until the
/// service stopped and flushed the database.
pub fn spawn_chain_service(mut state: NodeState) -> std::io::Result<(ChainHandle, JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
    let handle = ChainHandle {
        tx,
        params: state.params(),
        tip: state.notifier.tip.subscribe(),
        blocks: state.notifier.blocks.clone(),
        txs: state.notifier.txs.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("chain".into())
        .spawn(move || {
            while let Some(job) = rx.blocking_recv() {
                if let Flow::Stop = job(&mut state) {
                    break;
                }
            }
            state.persist();
            if let Err(e) = state.chain.flush() {
                tracing::error!(target: "chain", error = %e, "writing the coin cache failed");
            }
            if let Err(e) = state.chain.db().flush() {
                tracing::error!(target: "chain", error = %e, "flushing the database failed");
            }
            info!(target: "chain", height = state.chain.height(), "chain service stopped");
        })?;
    Ok((handle, thread))
}
