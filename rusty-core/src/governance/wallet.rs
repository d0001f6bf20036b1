//! Governance from the wallet: a proposal transaction that burns the fee,
//! and votes signed with the voting keys the wallet holds (a masternode
//! registered from this wallet votes with its owner key, which
//! `register_masternode` makes its voting key).

use rusty_crypto::ed25519::pubkey_hash;
use rusty_shared_types::{
    governance::{Proposal, VoteBatch, VoteOutcome, MAX_VOTES_PER_TX},
    Amount, Hash256, Payload, Script, Transaction, TxOut,
};

use super::GovernanceParams;
use crate::state::{NodeState, SendError, TxRejection};

/// What the burn output's `OP_RETURN` carries (a marker for explorers).
pub const BURN_MARKER: &[u8] = b"rusty governance burn";

/// Why a vote from the wallet could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VoteError {
    #[error("this node has no wallet loaded")]
    NoWallet,
    #[error("masternode {0} is not on the list")]
    UnknownMasternode(Hash256),
    #[error("the wallet does not hold the voting key of masternode {0}")]
    NoVotingKey(Hash256),
    #[error("the wallet holds the voting key of no masternode on the list")]
    NoMasternodes,
    #[error("no proposal to vote on")]
    NoVotes,
}

/// One masternode's vote sent from the wallet, or why it was refused.
#[derive(Debug)]
pub struct VoteSent {
    pub masternode: Hash256,
    pub result: Result<Hash256, TxRejection>,
}

impl NodeState {
    /// Submits `proposal` from the wallet: one transaction carrying it and
    /// burning the proposal fee in an `OP_RETURN` output, checked and
    /// accepted to the mempool like any other.
    pub fn submit_proposal(
        &mut self,
        proposal: Proposal,
        fee_rate: u64,
        now: u64,
    ) -> Result<Hash256, SendError> {
        let g = GovernanceParams::of(self.params().network);
        let burn = TxOut {
            value: Amount::from_units(g.proposal_fee).unwrap_or(Amount::MAX),
            lock: Script::data_carrier(BURN_MARKER).unwrap_or_default(),
        };
        self.send_special(
            vec![burn],
            |_| Some(Payload::Proposal(proposal)),
            fee_rate,
            now,
        )
    }

    /// The masternodes on the list whose voting key this wallet holds.
    pub fn voting_masternodes(&self) -> Vec<Hash256> {
        let Some(wallet) = self.wallet() else {
            return Vec::new();
        };
        self.chain()
            .mn()
            .entries()
            .filter(|e| {
                let pkh = pubkey_hash(&rusty_crypto::ed25519::PublicKey(e.voting_key));
                wallet.key_for(&pkh).is_some()
            })
            .map(|e| e.pro_tx_hash)
            .collect()
    }

    /// Votes `votes` (proposal, outcome; any order) as `masternode`, or as
    /// every masternode whose voting key the wallet holds. Each masternode's
    /// votes go in transactions of up to 64 proposals, made at the tip height and accepted to the
    /// vote pool; one refused does not stop the others.
    pub fn vote_from_wallet(
        &mut self,
        mut votes: Vec<(Hash256, VoteOutcome)>,
        masternode: Option<Hash256>,
        now: u64,
    ) -> Result<Vec<VoteSent>, VoteError> {
        votes.sort_by_key(|(p, _)| *p);
        votes.dedup_by_key(|(p, _)| *p);
        if votes.is_empty() {
            return Err(VoteError::NoVotes);
        }
        let voters = match masternode {
            Some(m) => {
                if self.chain().mn().get(&m).is_none() {
                    return Err(VoteError::UnknownMasternode(m));
                }
                vec![m]
            }
            None => self.voting_masternodes(),
        };
        if voters.is_empty() {
            return Err(VoteError::NoMasternodes);
        }
        let chain_name = self.params().network.name();
        let made_at = self.chain().height();
        let mut signed = Vec::with_capacity(voters.len());
        for pro in voters {
            for chunk in votes.chunks(MAX_VOTES_PER_TX) {
                let wallet = self.wallet().ok_or(VoteError::NoWallet)?;
                let entry = self
                    .chain()
                    .mn()
                    .get(&pro)
                    .ok_or(VoteError::UnknownMasternode(pro))?;
                let pkh = pubkey_hash(&rusty_crypto::ed25519::PublicKey(entry.voting_key));
                let key = wallet.key_for(&pkh).ok_or(VoteError::NoVotingKey(pro))?;
                let mut batch = VoteBatch {
                    pro_tx_hash: pro,
                    made_at,
                    votes: chunk.to_vec(),
                    signature: [0; 64],
                };
                batch.signature = key.sign(&batch.signing_hash(chain_name).0).0;
                signed.push((pro, batch));
            }
        }
        Ok(signed
            .into_iter()
            .map(|(pro, batch)| VoteSent {
                masternode: pro,
                result: self.accept_transaction(vote_transaction(batch), now),
            })
            .collect())
    }
}

/// The transaction carrying a vote: no inputs, no outputs.
pub fn vote_transaction(vote: VoteBatch) -> Transaction {
    Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs: Vec::new(),
        lock_time: 0,
        payload: Some(Payload::Vote(vote)),
    }
}
