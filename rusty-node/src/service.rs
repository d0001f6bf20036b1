//! The chain service: one OS thread owns the [`NodeState`] and runs the
//! commands that [`ChainHandle`]s send it over a bounded channel, one at a
//! time.
//!
//! Validation and RocksDB writes block, so the owner is a plain thread, not
//! a tokio task; async callers await a `oneshot` reply, and the miner's
//! threads use the `blocking_` methods. Every change to the state is one
//! variant of [`Command`] with a typed method on the handle, so this file
//! lists everything that can change the chain, the mempool or the wallet.
//! Reads are [`ChainHandle::query`] closures over `&NodeState`: they see a
//! consistent state between two changes and cannot change it.
//!
//! Work that takes long and needs no state runs elsewhere: proof of work
//! for `generatetoaddress` grinds on a blocking-pool thread between a
//! template command and a submit command, so other callers never wait
//! behind it.

use std::thread::JoinHandle;

use rusty_core::{
    chain::{BlockAcceptance, ChainError},
    governance::{VoteError, VoteSent},
    masternode::MnError,
    state::{
        tip_info, Announcement, BlockTemplate, NodeState, PurchaseError, Registered, Registration,
        SendError, TipInfo,
    },
    validation::ValidationError,
};
use rusty_shared_types::{
    Address, Amount, Block, ChainLock, ChainParams, Hash256, Payload, QuorumCommitment, Script,
    Transaction, TxIn, TxOut,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::info;

pub use rusty_core::state::TxRejection;

type Reply<T> = oneshot::Sender<T>;
type Query = Box<dyn FnOnce(&NodeState) + Send>;
/// The payload of a wallet special transaction, made from the inputs the
/// wallet chose.
pub type PayloadFn = Box<dyn FnOnce(&[TxIn]) -> Option<Payload> + Send>;

/// What the chain thread can be asked to do.
enum Command {
    /// A read: runs against `&NodeState` and replies through its closure.
    Query(Query),
    SubmitBlock(Block, Reply<Result<BlockAcceptance, ChainError>>),
    SubmitBlocks(Vec<Block>, Reply<Vec<Result<BlockAcceptance, ChainError>>>),
    AcceptTransaction(Transaction, Reply<Result<Hash256, TxRejection>>),
    ApplyChainLock(ChainLock, Reply<Result<bool, ValidationError>>),
    SubmitCommitment(QuorumCommitment, Reply<Result<bool, MnError>>),
    BlockTemplate {
        payout: Script,
        extra: Vec<u8>,
        reply: Reply<BlockTemplate>,
    },
    NewAddress(Reply<Result<Address, SendError>>),
    SendToAddress {
        to: Address,
        amount: Amount,
        fee_rate: u64,
        reply: Reply<Result<Hash256, SendError>>,
    },
    PreparePayment {
        to: Address,
        amount: Amount,
        fee_rate: u64,
        reply: Reply<Result<(Transaction, Amount), SendError>>,
    },
    SendSpecial {
        payment: Vec<TxOut>,
        payload: PayloadFn,
        fee_rate: u64,
        reply: Reply<Result<Hash256, SendError>>,
    },
    SendPurchase {
        purchase: rusty_shared_types::media::ContentPurchase,
        payment: TxOut,
        fee_rate: u64,
        reply: Reply<Result<Hash256, PurchaseError>>,
    },
    RegisterMasternode {
        registration: Registration,
        fee_rate: u64,
        reply: Reply<Result<Registered, SendError>>,
    },
    UpdateMasternodeService {
        pro_tx_hash: Hash256,
        service: String,
        operator: Box<rusty_crypto::bls::SecretKey>,
        fee_rate: u64,
        reply: Reply<Result<Hash256, SendError>>,
    },
    RevokeMasternode {
        pro_tx_hash: Hash256,
        reason: u16,
        operator: Box<rusty_crypto::bls::SecretKey>,
        fee_rate: u64,
        reply: Reply<Result<Hash256, SendError>>,
    },
    SubmitProposal {
        proposal: rusty_shared_types::governance::Proposal,
        fee_rate: u64,
        reply: Reply<Result<Hash256, SendError>>,
    },
    Vote {
        votes: Vec<(Hash256, rusty_shared_types::governance::VoteOutcome)>,
        masternode: Option<Hash256>,
        reply: Reply<Result<Vec<VoteSent>, VoteError>>,
    },
    /// Fault injection for supervision tests.
    Panic,
    /// Flush and stop after the commands already queued.
    Shutdown,
}

/// Depth of the command queue; senders wait when it is full.
const QUEUE_DEPTH: usize = 1024;

/// The chain service is gone (the node is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the chain service has stopped")]
pub struct ServiceStopped;

/// Why `generate` stopped.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Stopped(#[from] ServiceStopped),
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// A cloneable handle to the chain service.
#[derive(Debug, Clone)]
pub struct ChainHandle {
    tx: mpsc::Sender<Command>,
    params: &'static ChainParams,
    tip: watch::Receiver<TipInfo>,
    blocks: broadcast::Sender<TipInfo>,
    txs: broadcast::Sender<Transaction>,
}

impl ChainHandle {
    async fn send<R>(&self, make: impl FnOnce(Reply<R>) -> Command) -> Result<R, ServiceStopped> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ServiceStopped)?;
        rx.await.map_err(|_| ServiceStopped)
    }

    fn blocking_send<R>(
        &self,
        make: impl FnOnce(Reply<R>) -> Command,
    ) -> Result<R, ServiceStopped> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(make(reply))
            .map_err(|_| ServiceStopped)?;
        rx.blocking_recv().map_err(|_| ServiceStopped)
    }

    /// Runs the read `f` on the state and returns its result. A caller that
    /// gives up waiting just drops the future; the reply then goes nowhere.
    pub async fn query<R, F>(&self, f: F) -> Result<R, ServiceStopped>
    where
        R: Send + 'static,
        F: FnOnce(&NodeState) -> R + Send + 'static,
    {
        self.send(|reply| {
            Command::Query(Box::new(move |s| {
                let _ = reply.send(f(s));
            }))
        })
        .await
    }

    /// [`ChainHandle::query`] for threads outside the async runtime.
    pub fn blocking_query<R, F>(&self, f: F) -> Result<R, ServiceStopped>
    where
        R: Send + 'static,
        F: FnOnce(&NodeState) -> R + Send + 'static,
    {
        self.blocking_send(|reply| {
            Command::Query(Box::new(move |s| {
                let _ = reply.send(f(s));
            }))
        })
    }

    /// Height of the active tip.
    pub async fn height(&self) -> Result<u64, ServiceStopped> {
        self.query(|s| s.height()).await
    }

    /// Validates a block and connects it if it extends the best chain;
    /// mempool, wallet and subscribers follow.
    pub async fn submit_block(
        &self,
        block: Block,
    ) -> Result<Result<BlockAcceptance, ChainError>, ServiceStopped> {
        self.send(|reply| Command::SubmitBlock(block, reply)).await
    }

    /// Submits `blocks` in order, in one command (sync hands over batches
    /// of downloaded blocks), stopping after the first that fails other
    /// than by being known already: one result per block tried.
    pub async fn submit_blocks(
        &self,
        blocks: Vec<Block>,
    ) -> Result<Vec<Result<BlockAcceptance, ChainError>>, ServiceStopped> {
        self.send(|reply| Command::SubmitBlocks(blocks, reply))
            .await
    }

    /// [`ChainHandle::submit_block`] for the miner's threads.
    pub fn blocking_submit_block(
        &self,
        block: Block,
    ) -> Result<Result<BlockAcceptance, ChainError>, ServiceStopped> {
        self.blocking_send(|reply| Command::SubmitBlock(block, reply))
    }

    /// Full validation of a loose transaction, then mempool policy.
    pub async fn accept_transaction(
        &self,
        tx: Transaction,
    ) -> Result<Result<Hash256, TxRejection>, ServiceStopped> {
        self.send(|reply| Command::AcceptTransaction(tx, reply))
            .await
    }

    /// Verifies a ChainLock and applies it if it is the best so far.
    pub async fn apply_chainlock(
        &self,
        cl: ChainLock,
    ) -> Result<Result<bool, ValidationError>, ServiceStopped> {
        self.send(|reply| Command::ApplyChainLock(cl, reply)).await
    }

    /// Checks a final DKG commitment and keeps it to be mined if better.
    pub async fn submit_commitment(
        &self,
        qc: QuorumCommitment,
    ) -> Result<Result<bool, MnError>, ServiceStopped> {
        self.send(|reply| Command::SubmitCommitment(qc, reply))
            .await
    }

    /// A block template on the current tip paying `payout`.
    pub async fn block_template(
        &self,
        payout: Script,
        extra: Vec<u8>,
    ) -> Result<BlockTemplate, ServiceStopped> {
        self.send(|reply| Command::BlockTemplate {
            payout,
            extra,
            reply,
        })
        .await
    }

    /// [`ChainHandle::block_template`] for the miner's threads.
    pub fn blocking_block_template(
        &self,
        payout: Script,
        extra: Vec<u8>,
    ) -> Result<BlockTemplate, ServiceStopped> {
        self.blocking_send(|reply| Command::BlockTemplate {
            payout,
            extra,
            reply,
        })
    }

    /// Mines `count` blocks paying `address` (dev and tests: the pow limit
    /// makes each block a few hashes). Each template comes from the chain
    /// thread, its proof of work is ground on a blocking-pool thread, and
    /// the block is submitted like any other, so the chain thread serves
    /// other callers meanwhile. Gives up on a block after `max_tries`
    /// nonces, like Bitcoin Core's `maxtries`, and returns the blocks mined
    /// so far.
    pub async fn generate(
        &self,
        count: u64,
        address: &Address,
        max_tries: u64,
    ) -> Result<Vec<Hash256>, GenerateError> {
        let mut hashes = Vec::new();
        for _ in 0..count {
            let template = self
                .block_template(address.lock_script(), Vec::new())
                .await?;
            let solved = tokio::task::spawn_blocking(move || {
                let mut block = template.block;
                rusty_core::pow::solve(&mut block.header, &template.target, max_tries)
                    .map(|_| block)
            })
            .await
            .map_err(|_| ServiceStopped)?;
            let Some(block) = solved else {
                break;
            };
            let hash = block.hash();
            self.submit_block(block).await??;
            hashes.push(hash);
        }
        Ok(hashes)
    }

    /// A new receiving address of the wallet.
    pub async fn new_address(&self) -> Result<Result<Address, SendError>, ServiceStopped> {
        self.send(Command::NewAddress).await
    }

    /// Pays `amount` to `to` from the wallet; the transaction is accepted
    /// to the mempool.
    /// A signed wallet payment, not sent: see
    /// [`NodeState::prepare_payment`].
    pub async fn prepare_payment(
        &self,
        to: Address,
        amount: Amount,
        fee_rate: u64,
    ) -> Result<Result<(Transaction, Amount), SendError>, ServiceStopped> {
        self.send(|reply| Command::PreparePayment {
            to,
            amount,
            fee_rate,
            reply,
        })
        .await
    }

    pub async fn send_to_address(
        &self,
        to: Address,
        amount: Amount,
        fee_rate: u64,
    ) -> Result<Result<Hash256, SendError>, ServiceStopped> {
        self.send(|reply| Command::SendToAddress {
            to,
            amount,
            fee_rate,
            reply,
        })
        .await
    }

    /// A wallet transaction paying `payment` with the payload `payload`
    /// makes from the chosen inputs; accepted to the mempool.
    pub async fn send_special(
        &self,
        payment: Vec<TxOut>,
        payload: PayloadFn,
        fee_rate: u64,
    ) -> Result<Result<Hash256, SendError>, ServiceStopped> {
        self.send(|reply| Command::SendSpecial {
            payment,
            payload,
            fee_rate,
            reply,
        })
        .await
    }

    /// Buys content from the wallet; refused while a purchase of the same
    /// content by the same buyer key waits in the mempool.
    pub async fn send_purchase(
        &self,
        purchase: rusty_shared_types::media::ContentPurchase,
        payment: TxOut,
        fee_rate: u64,
    ) -> Result<Result<Hash256, PurchaseError>, ServiceStopped> {
        self.send(|reply| Command::SendPurchase {
            purchase,
            payment,
            fee_rate,
            reply,
        })
        .await
    }

    /// Submits a governance proposal from the wallet (the transaction
    /// burns the proposal fee).
    pub async fn submit_proposal(
        &self,
        proposal: rusty_shared_types::governance::Proposal,
        fee_rate: u64,
    ) -> Result<Result<Hash256, SendError>, ServiceStopped> {
        self.send(|reply| Command::SubmitProposal {
            proposal,
            fee_rate,
            reply,
        })
        .await
    }

    /// Votes as `masternode`, or as every masternode whose voting key the
    /// wallet holds.
    pub async fn vote(
        &self,
        votes: Vec<(Hash256, rusty_shared_types::governance::VoteOutcome)>,
        masternode: Option<Hash256>,
    ) -> Result<Result<Vec<VoteSent>, VoteError>, ServiceStopped> {
        self.send(|reply| Command::Vote {
            votes,
            masternode,
            reply,
        })
        .await
    }

    /// Registers a masternode from the wallet (collateral and ProRegTx).
    pub async fn register_masternode(
        &self,
        registration: Registration,
        fee_rate: u64,
    ) -> Result<Result<Registered, SendError>, ServiceStopped> {
        self.send(|reply| Command::RegisterMasternode {
            registration,
            fee_rate,
            reply,
        })
        .await
    }

    /// A ProUpServTx signed by `operator`, paid from the wallet.
    pub async fn update_masternode_service(
        &self,
        pro_tx_hash: Hash256,
        service: String,
        operator: rusty_crypto::bls::SecretKey,
        fee_rate: u64,
    ) -> Result<Result<Hash256, SendError>, ServiceStopped> {
        self.send(|reply| Command::UpdateMasternodeService {
            pro_tx_hash,
            service,
            operator: Box::new(operator),
            fee_rate,
            reply,
        })
        .await
    }

    /// A ProUpRevTx signed by `operator`, paid from the wallet.
    pub async fn revoke_masternode(
        &self,
        pro_tx_hash: Hash256,
        reason: u16,
        operator: rusty_crypto::bls::SecretKey,
        fee_rate: u64,
    ) -> Result<Result<Hash256, SendError>, ServiceStopped> {
        self.send(|reply| Command::RevokeMasternode {
            pro_tx_hash,
            reason,
            operator: Box::new(operator),
            fee_rate,
            reply,
        })
        .await
    }

    /// Fault injection for supervision tests (`node --inject-panic chain`,
    /// dev only): the chain thread panics on this command, as it would on
    /// a bug, and the node must stop with a clear error.
    pub async fn inject_panic(&self) {
        let _ = self.tx.send(Command::Panic).await;
    }

    /// Asks the service to flush and stop after the commands already
    /// queued.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }

    /// [`ChainHandle::shutdown`] without waiting for queue space; false if
    /// the queue is full or the service already stopped.
    pub fn try_shutdown(&self) -> bool {
        self.tx.try_send(Command::Shutdown).is_ok()
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
    pub fn subscribe_txs(&self) -> broadcast::Receiver<Transaction> {
        self.txs.subscribe()
    }
}

/// The channels the chain thread announces on: a `watch` for miners (the
/// latest tip only), `broadcast`s for RPC subscriptions (every tip) and
/// relay (every accepted transaction).
#[derive(Debug, Clone)]
struct Notifier {
    tip: watch::Sender<TipInfo>,
    blocks: broadcast::Sender<TipInfo>,
    txs: broadcast::Sender<Transaction>,
}

impl Notifier {
    fn new(initial: TipInfo) -> Self {
        Notifier {
            tip: watch::channel(initial).0,
            blocks: broadcast::channel(256).0,
            txs: broadcast::channel(4096).0,
        }
    }

    /// Sends what the last command changed. No receivers is fine: nobody
    /// is mining, subscribed or relaying.
    fn publish(&self, state: &mut NodeState) {
        for announcement in state.take_announcements() {
            match announcement {
                Announcement::Tip(info) => {
                    let _ = self.blocks.send(info.clone());
                    self.tip.send_replace(info);
                }
                Announcement::Transaction(tx) => {
                    let _ = self.txs.send(*tx);
                }
            }
        }
    }
}

/// The chain service's loop, before it runs: [`ChainLoop::run`] is the body
/// of the chain thread (a supervised one in a node, see
/// [`crate::tasks::TaskExecutor::spawn_critical_thread`]).
pub struct ChainLoop {
    state: NodeState,
    rx: mpsc::Receiver<Command>,
    notifier: Notifier,
    metrics: Option<crate::metrics::ChainMetrics>,
}

impl std::fmt::Debug for ChainLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainLoop")
            .field("height", &self.state.height())
            .finish()
    }
}

impl ChainLoop {
    /// Records block validation times into `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: crate::metrics::ChainMetrics) -> ChainLoop {
        self.metrics = Some(metrics);
        self
    }

    /// Runs commands until a shutdown command or until every handle is
    /// gone, then flushes the state to disk.
    pub fn run(self) {
        let ChainLoop {
            mut state,
            mut rx,
            notifier,
            metrics,
        } = self;
        // Changes made before the service existed (the mempool reloaded at
        // start) had no listeners, as before the split: not announced.
        drop(state.take_announcements());
        while let Some(command) = rx.blocking_recv() {
            let blocks = match &command {
                Command::SubmitBlock(..) => 1,
                Command::SubmitBlocks(blocks, _) => blocks.len(),
                _ => 0,
            };
            let started = std::time::Instant::now();
            let go_on = execute(&mut state, command);
            if let (Some(m), true) = (&metrics, blocks > 0) {
                // A batch from sync: its blocks share the time evenly.
                let each = started.elapsed().as_secs_f64() / blocks as f64;
                for _ in 0..blocks {
                    m.block_validation_seconds.observe(each);
                }
            }
            notifier.publish(&mut state);
            // A database write failed (a full disk): the state in memory
            // may be ahead of the disk, and RocksDB takes no more writes.
            // Stop the node (Bitcoin Core's AbortNode); a restart reopens
            // at the last good write.
            if let Some(e) = state.chain().db().write_failure() {
                panic!("database write failed ({e}); free disk space, then restart the node");
            }
            if !go_on {
                break;
            }
        }
        state.close();
        info!(target: "chain", height = state.height(), "chain service stopped");
    }
}

/// Runs one command; false once asked to stop. A caller that gave up
/// waiting dropped its reply receiver; sending then fails harmlessly.
fn execute(s: &mut NodeState, command: Command) -> bool {
    let now = rusty_core::now();
    match command {
        Command::Query(f) => f(s),
        Command::SubmitBlock(block, reply) => {
            let _ = reply.send(s.submit_block(block, now));
        }
        Command::SubmitBlocks(blocks, reply) => {
            let mut results = Vec::with_capacity(blocks.len());
            for block in blocks {
                let r = s.submit_block(block, now);
                let failed = matches!(
                    &r,
                    Err(e) if !matches!(e, ChainError::Invalid(ValidationError::DuplicateBlock(_)))
                );
                results.push(r);
                if failed {
                    break;
                }
            }
            let _ = reply.send(results);
        }
        Command::AcceptTransaction(tx, reply) => {
            let _ = reply.send(s.accept_transaction(tx, now));
        }
        Command::ApplyChainLock(cl, reply) => {
            let _ = reply.send(s.apply_chainlock(cl));
        }
        Command::SubmitCommitment(qc, reply) => {
            let _ = reply.send(s.submit_commitment(qc));
        }
        Command::BlockTemplate {
            payout,
            extra,
            reply,
        } => {
            let _ = reply.send(s.block_template(&payout, now, extra));
        }
        Command::NewAddress(reply) => {
            let _ = reply.send(s.new_address());
        }
        Command::SendToAddress {
            to,
            amount,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.send_to_address(&to, amount, fee_rate, now));
        }
        Command::PreparePayment {
            to,
            amount,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.prepare_payment(&to, amount, fee_rate));
        }
        Command::SendSpecial {
            payment,
            payload,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.send_special(payment, payload, fee_rate, now));
        }
        Command::SendPurchase {
            purchase,
            payment,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.send_purchase(purchase, payment, fee_rate, now));
        }
        Command::RegisterMasternode {
            registration,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.register_masternode(registration, fee_rate, now));
        }
        Command::UpdateMasternodeService {
            pro_tx_hash,
            service,
            operator,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.update_masternode_service(
                pro_tx_hash,
                service,
                &operator,
                fee_rate,
                now,
            ));
        }
        Command::RevokeMasternode {
            pro_tx_hash,
            reason,
            operator,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.revoke_masternode(pro_tx_hash, reason, &operator, fee_rate, now));
        }
        Command::SubmitProposal {
            proposal,
            fee_rate,
            reply,
        } => {
            let _ = reply.send(s.submit_proposal(proposal, fee_rate, now));
        }
        Command::Vote {
            votes,
            masternode,
            reply,
        } => {
            let _ = reply.send(s.vote_from_wallet(votes, masternode, now));
        }
        Command::Panic => panic!("injected fault (--inject-panic chain)"),
        Command::Shutdown => return false,
    }
    true
}

/// The handle and the loop of a chain service over `state`.
pub fn chain_service(state: NodeState) -> (ChainHandle, ChainLoop) {
    let (tx, rx) = mpsc::channel::<Command>(QUEUE_DEPTH);
    let notifier = Notifier::new(tip_info(state.chain()));
    let handle = ChainHandle {
        tx,
        params: state.params(),
        tip: notifier.tip.subscribe(),
        blocks: notifier.blocks.clone(),
        txs: notifier.txs.clone(),
    };
    (
        handle,
        ChainLoop {
            state,
            rx,
            notifier,
            metrics: None,
        },
    )
}

/// Starts the service on a plain thread (tests, tools). Joining the
/// returned handle waits until the service stopped and flushed the
/// database.
pub fn spawn_chain_service(state: NodeState) -> std::io::Result<(ChainHandle, JoinHandle<()>)> {
    let (handle, chain_loop) = chain_service(state);
    let thread = std::thread::Builder::new()
        .name("chain".into())
        .spawn(move || chain_loop.run())?;
    Ok((handle, thread))
}
