//! Consensus rules: context-free checks of transactions and blocks, and the
//! checks of a transaction against the coins it spends.
//!
//! Every failure is a [`ValidationError`] with a Bitcoin-style reject reason
//! (`high-hash`, `bad-txnmrklroot`, …) for RPC callers and a message for
//! people.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::HashSet;

use rusty_crypto::merkle::merkle_root;
use rusty_shared_types::{
    transaction::{
        LOCKTIME_THRESHOLD, SEQUENCE_FINAL, SEQUENCE_LOCKTIME_DISABLE_FLAG, SEQUENCE_LOCKTIME_MASK,
    },
    Amount, Block, BlockHeader, ChainParams, Hash256, OutPoint, Payload, Transaction,
};
use rusty_vm::{ScriptError, SignatureChecker};

use crate::{masternode::MnError, pow, tables::Coin};

/// Why a block or transaction is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The header hash is above its target.
    #[error("proof of work failed: the block hash is above the target")]
    HighHash,
    /// `bits` is not a valid target or is easier than the network allows.
    #[error("invalid difficulty bits {0:#010x}")]
    BadBitsEncoding(u32),
    /// `bits` differs from what the difficulty algorithm requires.
    #[error("incorrect difficulty: expected bits {expected:#010x}, found {found:#010x}")]
    BadDiffBits { expected: u32, found: u32 },
    /// Timestamp not after the median of the previous blocks.
    #[error("block time {time} is not after the median time past {mtp}")]
    TimeTooOld { time: u64, mtp: u64 },
    /// Timestamp too far in the future.
    #[error("block time {time} is more than {max_ahead} s ahead of the node's clock ({now})")]
    TimeTooNew { time: u64, now: u64, max_ahead: u64 },
    /// The merkle root does not match the transactions.
    #[error("merkle root does not match the block's transactions")]
    BadMerkleRoot,
    /// Unknown block version.
    #[error("unsupported block version {0}")]
    BadVersion(u32),
    #[error("block is {size} bytes, more than the limit of {max}")]
    BlockTooLarge { size: usize, max: usize },
    #[error("the first transaction of a block must be its coinbase")]
    FirstTxNotCoinbase,
    #[error("a block has exactly one coinbase, as its first transaction")]
    MultipleCoinbase,
    #[error("coinbase claims height {found}, the block is at height {expected}")]
    BadCoinbaseHeight { expected: u64, found: u64 },
    #[error("coinbase pays {found}, more than subsidy plus fees ({max})")]
    BadCoinbaseAmount { max: Amount, found: Amount },
    #[error("block contains transaction {0} twice")]
    DuplicateTx(Hash256),
    #[error("previous block {0} is unknown")]
    PrevBlockNotFound(Hash256),
    #[error("previous block {0} is invalid")]
    PrevBlockInvalid(Hash256),
    #[error("block {0} is already known")]
    DuplicateBlock(Hash256),
    #[error("block {0} is already known to be invalid")]
    DuplicateInvalidBlock(Hash256),
    #[error("block conflicts with a checkpoint or finalized block")]
    ForkBelowFinality,

    #[error("transaction has no inputs")]
    NoInputs,
    #[error("transaction has no outputs")]
    NoOutputs,
    #[error("transaction is {size} bytes, more than the limit of {max}")]
    TxTooLarge { size: usize, max: usize },
    #[error("transaction spends {0:?} twice")]
    DuplicateInputs(OutPoint),
    #[error("output values exceed the money range")]
    OutputValueOutOfRange,
    #[error("input values exceed the money range")]
    InputValueOutOfRange,
    #[error("only a coinbase may carry a coinbase payload")]
    CoinbasePayloadOutsideCoinbase,
    #[error("a coinbase is only valid as the first transaction of a block")]
    LooseCoinbase,
    #[error("input {0:?} is missing or already spent")]
    MissingOrSpent(OutPoint),
    #[error(
        "input {outpoint:?} spends a coinbase at depth {depth}, it matures at depth {maturity}"
    )]
    PrematureCoinbaseSpend {
        outpoint: OutPoint,
        depth: u64,
        maturity: u64,
    },
    #[error("outputs ({outputs}) exceed inputs ({inputs})")]
    Overspend { inputs: Amount, outputs: Amount },
    #[error("transaction is not final (lock time {0})")]
    NonFinal(u64),
    #[error("input {0} has a sequence with reserved bits set")]
    NonCanonicalSequence(usize),
    #[error("input {0} is under a relative lock that has not expired")]
    SequenceLockNotMet(usize),
    #[error("script of input {input} failed: {source}")]
    Script { input: usize, source: ScriptError },
    /// Found by the block's batch verification, then pinned to its
    /// transaction by checking that run's signatures one by one.
    #[error("transaction {0} carries an invalid signature")]
    BadSignature(Hash256),
    /// A masternode, quorum or ChainLock rule.
    #[error(transparent)]
    Masternode(#[from] MnError),
    /// Quorum commitments and ChainLocks travel only inside blocks.
    #[error("a {0} transaction is only valid inside a block")]
    BlockOnlyTx(&'static str),
    /// A block-only transaction must have no inputs and no outputs.
    #[error("a {0} transaction must have no inputs and no outputs")]
    BadBlockOnlyTx(&'static str),
    /// A content purchase that does not pay the creator its price.
    #[error("content purchase: {0}")]
    BadPurchase(&'static str),
    /// A key release whose input 0 does not spend output 0 of its purchase.
    #[error("key release: input 0 must spend output 0 of purchase {0}")]
    BadKeyRelease(Hash256),
    /// A governance rule (proposal, vote, treasury payout).
    #[error(transparent)]
    Governance(#[from] crate::governance::GovError),
    /// An account-world rule (Ethereum transaction, state root).
    #[error(transparent)]
    Contract(#[from] crate::contracts::ContractError),
}

impl ValidationError {
    /// The Bitcoin-style reject reason, for `submitblock` and `sendrawtransaction`.
    /// Whether the sender of a block or transaction failing with this error
    /// is at fault. Errors that depend on the receiver's view (its clock,
    /// its chain, its UTXO set) are not: an honest peer on another branch
    /// or with another clock can send them.
    pub fn is_peer_fault(&self) -> bool {
        use ValidationError::*;
        if let Governance(e) = self {
            return !e.depends_on_chain();
        }
        if let Contract(e) = self {
            return e.is_peer_fault();
        }
        !matches!(
            self,
            TimeTooNew { .. }
                | PrevBlockNotFound(_)
                | DuplicateBlock(_)
                | ForkBelowFinality
                | MissingOrSpent(_)
                | PrematureCoinbaseSpend { .. }
                | NonFinal(_)
                | SequenceLockNotMet(_)
                | Masternode(
                    MnError::UnknownMasternode(_)
                        | MnError::DuplicateOperatorKey(_)
                        | MnError::DuplicateService(_)
                )
        )
    }

    pub fn reject_reason(&self) -> &'static str {
        use ValidationError::*;
        match self {
            HighHash => "high-hash",
            BadBitsEncoding(_) | BadDiffBits { .. } => "bad-diffbits",
            TimeTooOld { .. } => "time-too-old",
            TimeTooNew { .. } => "time-too-new",
            BadMerkleRoot => "bad-txnmrklroot",
            BadVersion(_) => "bad-version",
            BlockTooLarge { .. } => "bad-blk-length",
            FirstTxNotCoinbase => "bad-cb-missing",
            MultipleCoinbase => "bad-cb-multiple",
            BadCoinbaseHeight { .. } => "bad-cb-height",
            BadCoinbaseAmount { .. } => "bad-cb-amount",
            DuplicateTx(_) => "bad-txns-duplicate",
            PrevBlockNotFound(_) => "prev-blk-not-found",
            PrevBlockInvalid(_) => "bad-prevblk",
            DuplicateBlock(_) => "duplicate",
            DuplicateInvalidBlock(_) => "duplicate-invalid",
            ForkBelowFinality => "bad-fork-prior-to-finality",
            NoInputs => "bad-txns-vin-empty",
            NoOutputs => "bad-txns-vout-empty",
            TxTooLarge { .. } => "bad-txns-oversize",
            DuplicateInputs(_) => "bad-txns-inputs-duplicate",
            OutputValueOutOfRange => "bad-txns-txouttotal-toolarge",
            InputValueOutOfRange => "bad-txns-inputvalues-outofrange",
            CoinbasePayloadOutsideCoinbase => "bad-txns-payload",
            LooseCoinbase => "bad-tx-coinbase",
            MissingOrSpent(_) => "bad-txns-inputs-missingorspent",
            PrematureCoinbaseSpend { .. } => "bad-txns-premature-spend-of-coinbase",
            Overspend { .. } => "bad-txns-in-belowout",
            NonFinal(_) => "bad-txns-nonfinal",
            NonCanonicalSequence(_) => "bad-txns-sequence",
            SequenceLockNotMet(_) => "non-BIP68-final",
            Script { .. } | BadSignature(_) => "mandatory-script-verify-flag-failed",
            Masternode(e) => e.reject_reason(),
            BlockOnlyTx(_) | BadBlockOnlyTx(_) => "bad-txns-special",
            BadPurchase(_) => "bad-txns-purchase",
            BadKeyRelease(_) => "bad-txns-key-release",
            Governance(e) => e.reject_reason(),
            Contract(crate::contracts::ContractError::BadStateRoot { .. }) => "bad-state-root",
            Contract(_) => "bad-txns-eth",
        }
    }
}

pub type Result<T> = std::result::Result<T, ValidationError>;

/// The only block version so far.
pub const BLOCK_VERSION: u32 = 1;

/// The lock script a content purchase pays: the creator key's
/// pay-to-pubkey-hash.
pub fn purchase_lock(creator: &[u8; 32]) -> rusty_shared_types::Script {
    rusty_shared_types::Script::p2pkh(&rusty_crypto::ed25519::pubkey_hash(
        &rusty_crypto::ed25519::PublicKey(*creator),
    ))
}

/// Paid-content payloads (`rusty_shared_types::media`): a purchase pays at
/// least its price to the creator's key in output 0; a release spends
/// output 0 of its purchase in input 0 (the script check then proves the
/// creator signed it).
fn check_media_payload(tx: &Transaction) -> Result<()> {
    match &tx.payload {
        Some(Payload::ContentPurchase(p)) => {
            if p.price == 0 {
                return Err(ValidationError::BadPurchase("the price is zero"));
            }
            let pays = purchase_lock(&p.creator);
            let out = tx
                .outputs
                .first()
                .ok_or(ValidationError::BadPurchase("no output 0"))?;
            if out.lock != pays {
                return Err(ValidationError::BadPurchase(
                    "output 0 does not pay the creator's key",
                ));
            }
            if out.value.units() < p.price {
                return Err(ValidationError::BadPurchase(
                    "output 0 pays less than the price",
                ));
            }
            Ok(())
        }
        Some(Payload::KeyRelease(r)) => {
            let first = tx.inputs.first().map(|i| i.prevout);
            if first
                != Some(OutPoint {
                    txid: r.purchase,
                    vout: 0,
                })
            {
                return Err(ValidationError::BadKeyRelease(r.purchase));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A proposal burns the proposal fee in its own transaction: its
/// provably unspendable (`OP_RETURN`) outputs carry at least the fee, so
/// no one ever spends it and no miner collects it. A deposit output is
/// unspendable too, but its value is credited to an account: not a burn.
fn check_proposal_burn(tx: &Transaction, params: &ChainParams) -> Result<()> {
    let fee = crate::governance::GovernanceParams::of(params.network).proposal_fee;
    let needed = Amount::from_units(fee).unwrap_or(Amount::MAX);
    let burned = Amount::checked_sum(
        tx.outputs
            .iter()
            .filter(|o| {
                o.lock.is_unspendable() && rusty_shared_types::evm::parse_deposit(&o.lock).is_none()
            })
            .map(|o| o.value),
    )
    .map_err(|_| ValidationError::OutputValueOutOfRange)?;
    if burned < needed {
        return Err(crate::governance::GovError::ProposalFee {
            needed,
            paid: burned,
        }
        .into());
    }
    Ok(())
}

/// Context-free transaction checks.
pub fn check_transaction(tx: &Transaction, params: &ChainParams) -> Result<()> {
    check_transaction_sized(tx, tx.size(), params)
}

/// [`check_transaction`] for a transaction whose encoded size is known.
fn check_transaction_sized(tx: &Transaction, size: usize, params: &ChainParams) -> Result<()> {
    if size > params.max_tx_size {
        return Err(ValidationError::TxTooLarge {
            size,
            max: params.max_tx_size,
        });
    }
    // A vote is a bare signed payload: no coins move, no fee is paid.
    if let Some(Payload::Vote(v)) = &tx.payload {
        // The decoder's limits, for votes built in memory too: 1 to 64
        // proposals, ascending, each once.
        let ascending = v.votes.windows(2).all(|w| w[0].0 < w[1].0);
        if !tx.inputs.is_empty()
            || !tx.outputs.is_empty()
            || tx.lock_time != 0
            || v.votes.is_empty()
            || v.votes.len() > rusty_shared_types::governance::MAX_VOTES_PER_TX
            || !ascending
        {
            return Err(crate::governance::GovError::BadVoteShape.into());
        }
        return Ok(());
    }
    // A settlement pays withdrawals out of the account world: outputs
    // without inputs, checked against the block's execution.
    if let Some(Payload::Settlement(_)) = &tx.payload {
        if !tx.inputs.is_empty() || tx.outputs.is_empty() || tx.lock_time != 0 {
            return Err(crate::contracts::ContractError::BadSettlement(
                "a settlement has no inputs, some outputs and lock time 0".into(),
            )
            .into());
        }
        tx.output_value()
            .map_err(|_| ValidationError::OutputValueOutOfRange)?;
        return Ok(());
    }
    // An Ethereum transaction pays from its account: no coins move. Its
    // wrapper is fixed, so the signed bytes have one txid (a relay could
    // otherwise change the version and the id with it).
    if let Some(Payload::EthTx(_)) = &tx.payload {
        if tx.version != 1 || !tx.inputs.is_empty() || !tx.outputs.is_empty() || tx.lock_time != 0 {
            return Err(crate::contracts::ContractError::BadShape.into());
        }
        return Ok(());
    }
    if let Some(p @ (Payload::QuorumCommitment(_) | Payload::ChainLock(_))) = &tx.payload {
        if !tx.is_block_special() {
            return Err(ValidationError::BadBlockOnlyTx(p.kind()));
        }
        return Ok(());
    }
    if tx.outputs.is_empty() {
        return Err(ValidationError::NoOutputs);
    }
    tx.output_value()
        .map_err(|_| ValidationError::OutputValueOutOfRange)?;
    if tx.is_coinbase() {
        return Ok(());
    }
    if tx.inputs.is_empty() {
        return Err(ValidationError::NoInputs);
    }
    if matches!(tx.payload, Some(Payload::Coinbase(_))) {
        return Err(ValidationError::CoinbasePayloadOutsideCoinbase);
    }
    check_media_payload(tx)?;
    if let Some(Payload::Proposal(_)) = &tx.payload {
        check_proposal_burn(tx, params)?;
    }
    let mut seen = HashSet::with_capacity(tx.inputs.len());
    for (i, input) in tx.inputs.iter().enumerate() {
        if !seen.insert(input.prevout) {
            return Err(ValidationError::DuplicateInputs(input.prevout));
        }
        let seq = input.sequence;
        if seq & SEQUENCE_LOCKTIME_DISABLE_FLAG == 0 && seq & !SEQUENCE_LOCKTIME_MASK != 0 {
            return Err(ValidationError::NonCanonicalSequence(i));
        }
    }
    Ok(())
}

/// Proof of work of a header against its own `bits`, and `bits` within the
/// network's limit.
pub fn check_proof_of_work(header: &BlockHeader, params: &ChainParams) -> Result<()> {
    let target = pow::target_from_compact(header.bits)
        .map_err(|_| ValidationError::BadBitsEncoding(header.bits))?;
    let limit = pow::target_from_compact(params.pow_limit_bits)
        .map_err(|_| ValidationError::BadBitsEncoding(params.pow_limit_bits))?;
    if target > limit {
        return Err(ValidationError::BadBitsEncoding(header.bits));
    }
    if !pow::hash_meets_target(&header.hash(), &target) {
        return Err(ValidationError::HighHash);
    }
    Ok(())
}

/// The merkle root of a block's transactions (over wtxids).
pub fn block_merkle_root(txs: &[Transaction]) -> Hash256 {
    let leaves: Vec<Hash256> = txs.iter().map(|t| t.wtxid()).collect();
    merkle_root(&leaves)
}

/// Context-free block checks: everything that needs neither the parent nor
/// the UTXO set.
pub fn check_block(block: &Block, params: &ChainParams) -> Result<()> {
    check_block_txids(block, params).map(|_| ())
}

/// The size no block may exceed whatever governance decides: the upper
/// bound of the governed maximum, or the network's `max_block_size` when
/// that is larger (benchmarks). The governed maximum in force is checked
/// when the block connects.
pub fn hard_max_block_size(params: &ChainParams) -> usize {
    let bound = usize::try_from(crate::governance::BLOCK_SIZE_BOUNDS.1).unwrap_or(usize::MAX);
    params.max_block_size.max(bound)
}

/// The encoded size of `block`, without encoding it.
pub fn block_size(block: &Block) -> usize {
    let count_len = match block.txs.len() {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    };
    block.txs.iter().fold(
        rusty_shared_types::HEADER_SIZE.saturating_add(count_len),
        |acc, t| acc.saturating_add(t.size()),
    )
}

/// [`check_block`], returning the txids it computed on the way so that
/// connecting the block does not hash every transaction again.
pub(crate) fn check_block_txids(block: &Block, params: &ChainParams) -> Result<Vec<Hash256>> {
    let h = &block.header;
    if h.version != BLOCK_VERSION {
        return Err(ValidationError::BadVersion(h.version));
    }
    check_proof_of_work(h, params)?;
    // The masternode-list root, the ChainLock hash and the state root are
    // checked when the block connects.
    match block.txs.first() {
        Some(cb) if cb.is_coinbase() => {}
        _ => return Err(ValidationError::FirstTxNotCoinbase),
    }
    if block
        .txs
        .iter()
        .skip(1)
        .any(|t| t.coinbase_height().is_some())
    {
        return Err(ValidationError::MultipleCoinbase);
    }
    let facts = tx_facts(&block.txs, params)?;
    // Header, CompactSize transaction count, transactions.
    let count_len = match facts.len() {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    };
    let size = facts.iter().fold(
        rusty_shared_types::HEADER_SIZE.saturating_add(count_len),
        |acc, f| acc.saturating_add(f.size),
    );
    let max = hard_max_block_size(params);
    if size > max {
        return Err(ValidationError::BlockTooLarge { size, max });
    }
    let wtxids: Vec<Hash256> = facts.iter().map(|f| f.wtxid).collect();
    if merkle_root(&wtxids) != h.merkle_root {
        return Err(ValidationError::BadMerkleRoot);
    }
    let mut seen = HashSet::with_capacity(facts.len());
    for f in &facts {
        if !seen.insert(f.txid) {
            return Err(ValidationError::DuplicateTx(f.txid));
        }
    }
    Ok(facts.into_iter().map(|f| f.txid).collect())
}

/// What the context-free checks learn about each transaction.
struct TxFacts {
    txid: Hash256,
    wtxid: Hash256,
    size: usize,
}

/// Checks every transaction (on all cores for large blocks) and returns its
/// ids and size; each transaction is encoded once. The first failing
/// transaction in block order names the error.
fn tx_facts(txs: &[Transaction], params: &ChainParams) -> Result<Vec<TxFacts>> {
    let one = |tx: &Transaction| -> Result<TxFacts> {
        let bytes = rusty_shared_types::Encode::encode(tx);
        check_transaction_sized(tx, bytes.len(), params)?;
        let (txid, wtxid) = tx.ids_from_encoding(&bytes);
        Ok(TxFacts {
            txid,
            wtxid,
            size: bytes.len(),
        })
    };
    let threads = crate::cores();
    if threads < 2 || txs.len() < 256 {
        return txs.iter().map(one).collect();
    }
    // The threads claim chunks as they get to them instead of taking
    // halves up front: a thread spawned here starts 0.13–0.18 ms late on
    // the 2-vCPU machine (it waits on this thread's core until the other
    // core pulls it over; timed in `bench erc20`, whose blocks of 584
    // transactions this function took 0.6 ms for, see
    // docs/performance.md), and this one does the chunks meanwhile.
    let chunks: Vec<&[Transaction]> = txs.chunks(FACTS_CHUNK).collect();
    let claims = crate::claims::Claims::new(&chunks);
    let check = |chunk: &&[Transaction]| chunk.iter().map(one).collect::<Result<Vec<_>>>();
    let work = || while claims.claim(check) {};
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        work();
        for h in helpers {
            // A panic in a check is a bug: surface it as the serial path would.
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
    });
    // In block order, so the first failing transaction names the error.
    let mut facts = Vec::with_capacity(txs.len());
    for (chunk, done) in claims.into_results() {
        match done {
            Some(r) => facts.extend(r?),
            // Every chunk was claimed and done before the threads ended;
            // were one not, it is done here.
            None => facts.extend(chunk.iter().map(one).collect::<Result<Vec<_>>>()?),
        }
    }
    Ok(facts)
}

/// Transactions a thread of [`tx_facts`] claims at a time.
const FACTS_CHUNK: usize = 32;

/// Whether `tx` may be included in a block at `height` whose parent has
/// median time past `mtp` (Bitcoin's rules: lock time 0, or below the height
/// or time, or every input final).
pub fn is_final(tx: &Transaction, height: u64, mtp: u64) -> bool {
    if tx.lock_time == 0 {
        return true;
    }
    let limit = if tx.lock_time < LOCKTIME_THRESHOLD {
        height
    } else {
        mtp
    };
    tx.lock_time < limit || tx.inputs.iter().all(|i| i.sequence == SEQUENCE_FINAL)
}

/// Checks a non-coinbase transaction against the coins it spends (given in
/// input order) for inclusion at `height`; returns its fee. Scripts are
/// checked separately by [`verify_scripts`].
pub fn check_tx_inputs(
    tx: &Transaction,
    coins: &[Coin],
    height: u64,
    params: &ChainParams,
) -> Result<Amount> {
    let mut total_in = Amount::ZERO;
    for (i, (input, coin)) in tx.inputs.iter().zip(coins).enumerate() {
        if coin.is_coinbase {
            let depth = height.saturating_sub(coin.height);
            if depth < params.coinbase_maturity {
                return Err(ValidationError::PrematureCoinbaseSpend {
                    outpoint: input.prevout,
                    depth,
                    maturity: params.coinbase_maturity,
                });
            }
        }
        if input.sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG == 0 {
            let blocks = u64::from(input.sequence & SEQUENCE_LOCKTIME_MASK);
            let unlocks_at = coin.height.saturating_add(blocks);
            if height < unlocks_at {
                return Err(ValidationError::SequenceLockNotMet(i));
            }
        }
        total_in = total_in
            .checked_add(coin.output.value)
            .map_err(|_| ValidationError::InputValueOutOfRange)?;
    }
    let total_out = tx
        .output_value()
        .map_err(|_| ValidationError::OutputValueOutOfRange)?;
    total_in
        .checked_sub(total_out)
        .map_err(|_| ValidationError::Overspend {
            inputs: total_in,
            outputs: total_out,
        })
}

/// Runs every input's unlock and lock script. With a deferring checker the
/// signatures are collected for one batch verification by the caller.
pub fn verify_scripts(
    tx: &Transaction,
    coins: &[Coin],
    checker: &mut dyn SignatureChecker,
) -> Result<()> {
    let spent: Vec<_> = coins.iter().map(|c| c.output.clone()).collect();
    let cache = rusty_vm::SighashCache::new(tx, &spent)
        .map_err(|source| ValidationError::Script { input: 0, source })?;
    for input_index in 0..tx.inputs.len() {
        let ctx = rusty_vm::InputContext::new(&cache, input_index).map_err(|source| {
            ValidationError::Script {
                input: input_index,
                source,
            }
        })?;
        rusty_vm::verify_input(&ctx, checker).map_err(|source| ValidationError::Script {
            input: input_index,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusty_shared_types::{
        transaction::{SEQUENCE_FINAL, SEQUENCE_LOCKTIME_DISABLE_FLAG},
        Network, Script, TxIn, TxOut,
    };

    use super::*;

    fn params() -> &'static ChainParams {
        Network::Dev.params()
    }

    #[test]
    fn purchases_must_pay_the_creator_and_releases_must_spend_the_purchase() {
        use rusty_shared_types::media::{ContentPurchase, KeyRelease, WRAPPED_KEY_LEN};
        let creator = rusty_crypto::ed25519::SecretKey::from_bytes([7; 32]).public_key();
        let pays = Script::p2pkh(&rusty_crypto::ed25519::pubkey_hash(&creator));
        let input = TxIn {
            prevout: OutPoint::new(Hash256([1; 32]), 3),
            unlock: Script::default(),
            sequence: SEQUENCE_FINAL,
        };
        let purchase = |price: u64, value: u64, lock: Script| {
            let mut t = tx(
                vec![input.clone()],
                vec![TxOut {
                    value: Amount::from_units(value).unwrap(),
                    lock,
                }],
            );
            t.payload = Some(Payload::ContentPurchase(ContentPurchase {
                content_id: Hash256([2; 32]),
                creator: creator.0,
                price,
                buyer_key: [3; 32],
            }));
            t
        };
        assert_eq!(
            check_transaction(&purchase(500, 500, pays.clone()), params()),
            Ok(())
        );
        assert_eq!(
            check_transaction(&purchase(500, 900, pays.clone()), params()),
            Ok(())
        );
        for (bad, why) in [
            (purchase(0, 500, pays.clone()), "the price is zero"),
            (
                purchase(500, 499, pays.clone()),
                "output 0 pays less than the price",
            ),
            (
                purchase(500, 500, Script::p2pkh(&Hash256([9; 32]))),
                "output 0 does not pay the creator's key",
            ),
        ] {
            let e = check_transaction(&bad, params()).unwrap_err();
            assert_eq!(e, ValidationError::BadPurchase(why));
            assert_eq!(e.reject_reason(), "bad-txns-purchase");
        }
        let release = |prevout: OutPoint| {
            let mut t = tx(
                vec![TxIn {
                    prevout,
                    unlock: Script::default(),
                    sequence: SEQUENCE_FINAL,
                }],
                vec![TxOut {
                    value: Amount::from_units(400).unwrap(),
                    lock: pays.clone(),
                }],
            );
            t.payload = Some(Payload::KeyRelease(KeyRelease {
                purchase: Hash256([4; 32]),
                wrapped_key: [5; WRAPPED_KEY_LEN],
            }));
            t
        };
        assert_eq!(
            check_transaction(&release(OutPoint::new(Hash256([4; 32]), 0)), params()),
            Ok(())
        );
        for wrong in [
            OutPoint::new(Hash256([4; 32]), 1),
            OutPoint::new(Hash256([6; 32]), 0),
        ] {
            assert_eq!(
                check_transaction(&release(wrong), params()),
                Err(ValidationError::BadKeyRelease(Hash256([4; 32])))
            );
        }
    }

    fn tx(inputs: Vec<TxIn>, outputs: Vec<TxOut>) -> Transaction {
        Transaction {
            version: 1,
            inputs,
            outputs,
            lock_time: 0,
            payload: None,
        }
    }

    fn input(n: u8, sequence: u32) -> TxIn {
        TxIn {
            prevout: OutPoint::new(Hash256([n; 32]), 0),
            unlock: Script::default(),
            sequence,
        }
    }

    fn out(units: u64) -> TxOut {
        TxOut {
            value: Amount::from_units(units).unwrap(),
            lock: Script::new(vec![1]),
        }
    }

    fn coin(units: u64, height: u64, is_coinbase: bool) -> Coin {
        Coin {
            output: out(units),
            height,
            is_coinbase,
        }
    }

    #[test]
    fn context_free_transaction_rules() {
        let p = params();
        assert_eq!(
            check_transaction(&tx(vec![], vec![out(1)]), p),
            Err(ValidationError::NoInputs)
        );
        assert_eq!(
            check_transaction(&tx(vec![input(1, SEQUENCE_FINAL)], vec![]), p),
            Err(ValidationError::NoOutputs)
        );
        assert!(matches!(
            check_transaction(
                &tx(
                    vec![input(1, SEQUENCE_FINAL), input(1, SEQUENCE_FINAL)],
                    vec![out(1)]
                ),
                p
            ),
            Err(ValidationError::DuplicateInputs(_))
        ));
        // Relative lock with reserved bits set.
        assert_eq!(
            check_transaction(&tx(vec![input(1, 1 << 22)], vec![out(1)]), p),
            Err(ValidationError::NonCanonicalSequence(0))
        );
        assert!(check_transaction(&tx(vec![input(1, 10)], vec![out(1)]), p).is_ok());
        // Outputs summing past the money range.
        let max = rusty_shared_types::MAX_MONEY;
        assert_eq!(
            check_transaction(
                &tx(vec![input(1, SEQUENCE_FINAL)], vec![out(max), out(1)]),
                p
            ),
            Err(ValidationError::OutputValueOutOfRange)
        );
        let mut with_payload = tx(vec![input(1, SEQUENCE_FINAL)], vec![out(1)]);
        with_payload.payload = Some(rusty_shared_types::Payload::Coinbase(
            rusty_shared_types::CoinbasePayload {
                height: 1,
                extra: vec![],
            },
        ));
        assert_eq!(
            check_transaction(&with_payload, p),
            Err(ValidationError::CoinbasePayloadOutsideCoinbase)
        );
    }

    #[test]
    fn lock_time_finality() {
        let mut t = tx(vec![input(1, 0)], vec![out(1)]);
        assert!(is_final(&t, 1, 0));
        t.lock_time = 100;
        assert!(!is_final(&t, 100, 0));
        assert!(is_final(&t, 101, 0));
        t.lock_time = LOCKTIME_THRESHOLD + 50;
        assert!(!is_final(&t, 1_000, LOCKTIME_THRESHOLD + 50));
        assert!(is_final(&t, 1_000, LOCKTIME_THRESHOLD + 51));
        t.inputs[0].sequence = SEQUENCE_FINAL;
        assert!(is_final(&t, 1, 0), "final sequences opt out");
    }

    #[test]
    fn inputs_against_coins() {
        let p = params();
        let t = tx(vec![input(1, SEQUENCE_FINAL)], vec![out(900)]);
        assert_eq!(
            check_tx_inputs(&t, &[coin(1000, 5, false)], 6, p)
                .unwrap()
                .units(),
            100
        );
        assert!(matches!(
            check_tx_inputs(&t, &[coin(800, 5, false)], 6, p),
            Err(ValidationError::Overspend { .. })
        ));
        // Coinbase maturity: from height 5, spendable at 5 + 10.
        assert!(matches!(
            check_tx_inputs(&t, &[coin(1000, 5, true)], 14, p),
            Err(ValidationError::PrematureCoinbaseSpend { depth: 9, .. })
        ));
        assert!(check_tx_inputs(&t, &[coin(1000, 5, true)], 15, p).is_ok());
        // Relative lock of 3 blocks on a coin from height 10.
        let rel = tx(vec![input(1, 3)], vec![out(900)]);
        assert_eq!(
            check_tx_inputs(&rel, &[coin(1000, 10, false)], 12, p),
            Err(ValidationError::SequenceLockNotMet(0))
        );
        assert!(check_tx_inputs(&rel, &[coin(1000, 10, false)], 13, p).is_ok());
        let disabled = tx(
            vec![input(1, SEQUENCE_LOCKTIME_DISABLE_FLAG | 3)],
            vec![out(900)],
        );
        assert!(check_tx_inputs(&disabled, &[coin(1000, 10, false)], 11, p).is_ok());
    }

    #[test]
    fn block_size_counts_the_exact_encoding() {
        use rusty_shared_types::Encode;
        let p = params();
        let mut block = p.genesis_block();
        block.txs[0].outputs.push(out(1));
        assert_eq!(block_size(&block), block.encode().len());
        // Past the hard cap (the governed maximum's upper bound, or a larger
        // network maximum) no block is valid.
        let mut big = p.clone();
        big.max_block_size = 9_000_000;
        assert_eq!(hard_max_block_size(&big), 9_000_000);
        assert_eq!(
            hard_max_block_size(p),
            crate::governance::BLOCK_SIZE_BOUNDS.1 as usize
        );
        let mut many = block.clone();
        let filler = many.txs[0].clone();
        while block_size(&many) <= hard_max_block_size(p) {
            many.txs.extend(std::iter::repeat_n(filler.clone(), 10_000));
        }
        assert!(matches!(
            check_block(&many, p),
            Err(ValidationError::BlockTooLarge { .. }) | Err(ValidationError::HighHash)
        ));
    }

    #[test]
    fn large_blocks_are_checked_in_parallel_with_the_same_verdict() {
        let p = params();
        let mut block = p.genesis_block();
        for n in 0..299u32 {
            let mut t = tx(vec![input((n % 250) as u8, SEQUENCE_FINAL)], vec![out(1)]);
            t.inputs[0].prevout.vout = n;
            block.txs.push(t);
        }
        block.header.merkle_root = block_merkle_root(&block.txs);
        let target = crate::pow::target_from_compact(block.header.bits).unwrap();
        crate::pow::solve(&mut block.header, &target, u64::MAX).unwrap();
        assert_eq!(check_block(&block, p), Ok(()));
        // Two bad transactions: the first in block order is reported.
        block.txs[280].outputs.clear();
        block.txs[40].inputs.clear();
        assert_eq!(check_block(&block, p), Err(ValidationError::NoInputs));
        block.txs[40].inputs.push(input(7, SEQUENCE_FINAL));
        assert_eq!(check_block(&block, p), Err(ValidationError::NoOutputs));
    }

    #[test]
    fn a_vote_is_a_bare_payload() {
        use rusty_shared_types::governance::{VoteBatch, VoteOutcome};
        let p = params();
        let mut vote = Transaction {
            version: 1,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lock_time: 0,
            payload: Some(Payload::Vote(VoteBatch {
                pro_tx_hash: Hash256([1; 32]),
                made_at: 5,
                votes: vec![(Hash256([2; 32]), VoteOutcome::Yes)],
                signature: [0; 64],
            })),
        };
        assert_eq!(check_transaction(&vote, p), Ok(()));
        vote.outputs.push(out(5));
        let err = check_transaction(&vote, p).expect_err("a vote with an output");
        assert_eq!(err.reject_reason(), "bad-gov-vote");
    }

    #[test]
    fn reject_reasons_are_bitcoin_style() {
        assert_eq!(ValidationError::HighHash.reject_reason(), "high-hash");
        assert_eq!(
            ValidationError::BadMerkleRoot.reject_reason(),
            "bad-txnmrklroot"
        );
        assert_eq!(
            ValidationError::MissingOrSpent(OutPoint::default()).reject_reason(),
            "bad-txns-inputs-missingorspent"
        );
    }
}
