//! The deterministic masternode list and quorum state (DIP-3 / DIP-6 in
//! Rusty Coin's shape): a pure function of the active chain.
//!
//! [`MnState`] is the list of registered masternodes, the DKGs in progress
//! and the most recent mined quorums. Connecting a block runs
//! [`MnState::apply_block`], which validates the block's masternode rules
//! (special transactions, payee, commitments) and returns the [`MnUndo`]
//! that disconnecting it needs; the chain stores that undo record in the
//! same write batch as the block's other effects. Every check is a pure
//! function of the state and the block, so any node reaches the same list;
//! the header's `mn_list_root` commits to it.

#![deny(clippy::arithmetic_side_effects)]

mod codec;

use std::collections::{BTreeMap, HashMap};

use rusty_crypto::bls;
use rusty_shared_types::{
    masternode::{
        inputs_hash, protx_sig_hash, quorum_sign_hash, BlsPublicKeyBytes, OperatorSigned,
        ProRegister, MAX_OPERATOR_REWARD_BPS, MAX_PAYOUT_SCRIPT, MAX_QUORUM_SIZE, MAX_SERVICE_LEN,
    },
    Amount, BitSet, Block, ChainLock, ChainParams, Domain, Encode, Hash256, OutPoint, Payload,
    QuorumCommitment, Script, Transaction, TxOut,
};

/// How many mined quorums the state remembers (signing uses the newest
/// [`rusty_shared_types::params::MasternodeParams::signing_quorums`]; the
/// rest let a slightly old ChainLock still be verified).
pub const KEEP_QUORUMS: usize = 8;

/// Why a block's masternode content is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MnError {
    #[error("registration collateral output {0} does not exist")]
    MissingCollateral(u32),
    #[error("collateral must be exactly {expected}, found {found}")]
    BadCollateralAmount { expected: Amount, found: Amount },
    #[error("collateral must be a pay-to-pubkey-hash output")]
    BadCollateralScript,
    #[error("payout script must be pay-to-pubkey-hash")]
    BadPayout,
    #[error("operator reward {0} bps is more than 10000")]
    BadOperatorReward(u16),
    #[error("invalid BLS operator key")]
    BadOperatorKey,
    #[error("operator key is already used by masternode {0}")]
    DuplicateOperatorKey(Hash256),
    #[error("service address is already used by masternode {0}")]
    DuplicateService(Hash256),
    #[error("service address `{0}` is not a multiaddr")]
    BadService(String),
    #[error("unknown masternode {0}")]
    UnknownMasternode(Hash256),
    #[error("special transaction signature does not verify")]
    BadSignature,
    #[error("masternode special transactions need inputs")]
    NoInputs,
    #[error("block pays the masternode reward to the wrong payee: expected {expected}")]
    WrongPayee { expected: Hash256 },
    #[error("commitment for unknown or finished DKG {0}")]
    UnexpectedCommitment(Hash256),
    #[error("two commitments for quorum {0} in one block")]
    DuplicateCommitment(Hash256),
    #[error("commitment for quorum {0} is malformed: {1}")]
    BadCommitment(Hash256, &'static str),
    #[error("quorum {0} commitment signatures do not verify")]
    BadCommitmentSig(Hash256),
    #[error(
        "the DKG of quorum {0} ends at this block: a commitment (null if it failed) is required"
    )]
    MissingCommitment(Hash256),
    #[error("more than one ChainLock in a block")]
    DuplicateChainLock,
    #[error("header chainlock_hash does not match the block's ChainLock")]
    BadChainLockHash,
    #[error("ChainLock at height {0} does not lock an ancestor of this block")]
    ChainLockNotAncestor(u64),
    #[error("no quorum can sign a ChainLock at height {0}")]
    NoSigningQuorum(u64),
    #[error("ChainLock signature at height {0} does not verify")]
    BadChainLockSig(u64),
    #[error("header mn_list_root does not match the masternode list")]
    BadListRoot,
}

impl MnError {
    /// Bitcoin-style short reject reason.
    pub fn reject_reason(&self) -> &'static str {
        use MnError::*;
        match self {
            MissingCollateral(_) | BadCollateralAmount { .. } | BadCollateralScript => {
                "bad-protx-collateral"
            }
            BadPayout | BadOperatorReward(_) => "bad-protx-payee",
            BadOperatorKey | DuplicateOperatorKey(_) => "bad-protx-key",
            DuplicateService(_) | BadService(_) => "bad-protx-service",
            UnknownMasternode(_) => "bad-protx-hash",
            BadSignature | NoInputs => "bad-protx-sig",
            WrongPayee { .. } => "bad-cb-payee",
            UnexpectedCommitment(_)
            | DuplicateCommitment(_)
            | BadCommitment(..)
            | BadCommitmentSig(_)
            | MissingCommitment(_) => "bad-qc",
            DuplicateChainLock
            | BadChainLockHash
            | ChainLockNotAncestor(_)
            | NoSigningQuorum(_)
            | BadChainLockSig(_) => "bad-clsig",
            BadListRoot => "bad-mnlist-root",
        }
    }
}

type Result<T> = std::result::Result<T, MnError>;

/// One registered masternode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasternodeEntry {
    /// Txid of the registration.
    pub pro_tx_hash: Hash256,
    pub collateral: OutPoint,
    pub owner_key: [u8; 32],
    pub operator_key: BlsPublicKeyBytes,
    pub voting_key: [u8; 32],
    pub payout: Script,
    pub operator_reward_bps: u16,
    pub operator_payout: Option<Script>,
    pub service: String,
    pub registered_height: u64,
    /// Height of the last payment (the registration height until paid).
    pub last_paid_height: u64,
    pub pose_penalty: u32,
    /// Set while banned (PoSe, revocation or a new operator key).
    pub pose_ban_height: Option<u64>,
    /// The operator revoked its service.
    pub revoked: bool,
}

impl MasternodeEntry {
    /// Paid and eligible for quorums.
    pub fn is_valid(&self) -> bool {
        self.pose_ban_height.is_none() && !self.revoked
    }

    /// The payments the masternode gets for a block paying `reward`: the
    /// owner's payout and, when configured, the operator's share.
    pub fn payments(&self, reward: Amount) -> Vec<TxOut> {
        let operator = match &self.operator_payout {
            Some(script) if self.operator_reward_bps > 0 => {
                let part = u128::from(reward.units())
                    .saturating_mul(u128::from(self.operator_reward_bps))
                    / 10_000;
                let part =
                    Amount::from_units(u64::try_from(part).unwrap_or(0)).unwrap_or(Amount::ZERO);
                Some((script.clone(), part))
            }
            _ => None,
        };
        let owner_part = reward
            .checked_sub(operator.as_ref().map_or(Amount::ZERO, |(_, a)| *a))
            .unwrap_or(Amount::ZERO);
        let mut out = vec![TxOut {
            value: owner_part,
            lock: self.payout.clone(),
        }];
        if let Some((lock, value)) = operator {
            if value > Amount::ZERO {
                out.push(TxOut { value, lock });
            }
        }
        out
    }

    fn leaf(&self) -> Hash256 {
        Hash256::domain_hash(Domain::MasternodeEntry, &self.encode())
    }
}

/// A DKG in progress: its members, fixed at the quorum height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDkg {
    pub quorum_hash: Hash256,
    pub quorum_height: u64,
    /// `(pro_tx_hash, operator key)` in member order.
    pub members: Vec<(Hash256, BlsPublicKeyBytes)>,
}

/// A quorum whose (non-null) commitment was mined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinedQuorum {
    pub quorum_hash: Hash256,
    pub quorum_height: u64,
    pub mined_height: u64,
    pub members: Vec<Hash256>,
    pub valid_members: BitSet,
    /// The quorum verification vector; its first point is the public key.
    pub vvec: Vec<BlsPublicKeyBytes>,
    /// The height of the block that made it the signing quorum (it signs
    /// the heights above): the first quorum at once; a later one by a
    /// handover (see [`MnState::hand_over`]). `None` while it waits.
    pub active_from: Option<u64>,
}

impl MinedQuorum {
    pub fn public_key(&self) -> Option<bls::PublicKey> {
        self.vvec
            .first()
            .and_then(|pk| bls::PublicKey::from_bytes(pk).ok())
    }

    /// The parsed verification vector.
    pub fn verification_vector(&self) -> Option<bls::VerificationVector> {
        let points = self
            .vvec
            .iter()
            .map(|p| bls::PublicKey::from_bytes(p).ok())
            .collect::<Option<Vec<_>>>()?;
        bls::VerificationVector::new(points).ok()
    }

    /// Member index of `pro_tx_hash`.
    pub fn index_of(&self, pro_tx_hash: &Hash256) -> Option<usize> {
        self.members.iter().position(|m| m == pro_tx_hash)
    }
}

/// The masternode list and quorum state at one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MnState {
    entries: BTreeMap<Hash256, MasternodeEntry>,
    /// Collateral outpoint → masternode (derived from `entries`).
    by_collateral: HashMap<OutPoint, Hash256>,
    pending: Vec<PendingDkg>,
    /// Newest last, at most [`KEEP_QUORUMS`].
    quorums: Vec<MinedQuorum>,
}

/// What disconnecting a block must restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MnUndo {
    /// Entries the block changed, with their value before it (`None`: the
    /// block created the entry).
    pub entries: Vec<(Hash256, Option<MasternodeEntry>)>,
    /// DKG and quorum state before the block, when it changed.
    pub quorums: Option<(Vec<PendingDkg>, Vec<MinedQuorum>)>,
}

impl MnState {
    pub fn entries(&self) -> impl Iterator<Item = &MasternodeEntry> {
        self.entries.values()
    }

    pub fn get(&self, pro_tx_hash: &Hash256) -> Option<&MasternodeEntry> {
        self.entries.get(pro_tx_hash)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn valid_count(&self) -> usize {
        self.entries.values().filter(|e| e.is_valid()).count()
    }

    /// The masternode whose collateral is `outpoint`.
    pub fn by_collateral(&self, outpoint: &OutPoint) -> Option<&MasternodeEntry> {
        self.by_collateral
            .get(outpoint)
            .and_then(|h| self.entries.get(h))
    }

    pub fn by_operator_key(&self, key: &BlsPublicKeyBytes) -> Option<&MasternodeEntry> {
        self.entries.values().find(|e| &e.operator_key == key)
    }

    pub fn pending_dkgs(&self) -> &[PendingDkg] {
        &self.pending
    }

    /// Mined quorums, newest last.
    pub fn quorums(&self) -> &[MinedQuorum] {
        &self.quorums
    }

    pub fn quorum(&self, quorum_hash: &Hash256) -> Option<&MinedQuorum> {
        self.quorums.iter().find(|q| &q.quorum_hash == quorum_hash)
    }

    /// Merkle root of the list (entries by pro_tx_hash); zero when empty.
    pub fn list_root(&self) -> Hash256 {
        let leaves: Vec<Hash256> = self.entries.values().map(MasternodeEntry::leaf).collect();
        rusty_crypto::merkle::merkle_root(&leaves)
    }

    /// The next payee: the valid masternode paid longest ago (never paid:
    /// since registration), ties broken by the lower registration hash.
    pub fn next_payee(&self) -> Option<&MasternodeEntry> {
        self.entries
            .values()
            .filter(|e| e.is_valid())
            .min_by_key(|e| (e.last_paid_height, e.pro_tx_hash))
    }

    /// The masternode outputs a coinbase paying the masternode share
    /// `reward` must contain.
    pub fn expected_payments(&self, reward: Amount) -> Vec<TxOut> {
        match self.next_payee() {
            Some(e) => e.payments(reward),
            None => Vec::new(),
        }
    }

    /// Quorum members for a DKG started by block `quorum_hash`: the valid
    /// masternodes sorted by `hash(pro_tx_hash, quorum_hash)`, the first
    /// `quorum_size`; none if fewer than the threshold are valid.
    pub fn select_members(
        &self,
        params: &ChainParams,
        quorum_hash: &Hash256,
    ) -> Vec<(Hash256, BlsPublicKeyBytes)> {
        let mut scored: Vec<(Hash256, &MasternodeEntry)> = self
            .entries
            .values()
            .filter(|e| e.is_valid())
            .map(|e| (member_score(&e.pro_tx_hash, quorum_hash), e))
            .collect();
        if scored.len() < params.masternode.quorum_threshold {
            return Vec::new();
        }
        scored.sort_by_key(|(score, _)| *score);
        scored
            .into_iter()
            .take(params.masternode.quorum_size.min(MAX_QUORUM_SIZE))
            .map(|(_, e)| (e.pro_tx_hash, e.operator_key))
            .collect()
    }

    /// The quorum that signs request `request_id` at `height`: among the
    /// newest `signing_quorums` quorums active before `height`, the one
    /// with the lowest `hash(quorum_hash, request_id)`.
    pub fn signing_quorum(
        &self,
        params: &ChainParams,
        height: u64,
        request_id: &Hash256,
    ) -> Option<&MinedQuorum> {
        self.quorums
            .iter()
            .rev()
            .filter(|q| q.active_from.is_some_and(|a| a < height))
            .take(params.masternode.signing_quorums)
            .min_by_key(|q| member_score(&q.quorum_hash, request_id))
    }

    /// Verifies a ChainLock's signature against the quorum that signs its
    /// height. Says nothing about whether it locks the caller's chain.
    pub fn verify_chainlock(&self, params: &ChainParams, cl: &ChainLock) -> Result<()> {
        let request_id = ChainLock::request_id(cl.height);
        let quorum = self
            .signing_quorum(params, cl.height, &request_id)
            .ok_or(MnError::NoSigningQuorum(cl.height))?;
        let pk = quorum
            .public_key()
            .ok_or(MnError::NoSigningQuorum(cl.height))?;
        let msg = quorum_sign_hash(&quorum.quorum_hash, &request_id, &cl.block_hash);
        let sig = bls::Signature::from_bytes(&cl.signature)
            .map_err(|_| MnError::BadChainLockSig(cl.height))?;
        if sig.verify(&msg.0, &pk) {
            Ok(())
        } else {
            Err(MnError::BadChainLockSig(cl.height))
        }
    }

    /// Validates a masternode special transaction against this state at
    /// `height` (registration, update or revocation) without applying it.
    /// `None` for transactions without a masternode payload.
    pub fn check_special_tx(
        &self,
        params: &ChainParams,
        tx: &Transaction,
        txid: Hash256,
        height: u64,
    ) -> Result<Option<MasternodeEntry>> {
        let payload = match &tx.payload {
            Some(
                p @ (Payload::ProRegister(_)
                | Payload::ProUpdateService(_)
                | Payload::ProUpdateRegistrar(_)
                | Payload::ProRevoke(_)),
            ) => p,
            _ => return Ok(None),
        };
        if tx.inputs.is_empty() {
            return Err(MnError::NoInputs);
        }
        let inputs = inputs_hash(&tx.inputs);
        let entry = match payload {
            Payload::ProRegister(reg) => self.check_register(params, tx, txid, reg, height)?,
            Payload::ProUpdateService(up) => {
                let mut e = self.known(&up.pro_tx_hash)?.clone();
                check_operator_sig(&e.operator_key, up, &inputs)?;
                check_service(&up.service)?;
                self.check_unique_service(&up.service, &up.pro_tx_hash)?;
                if let Some(s) = &up.operator_payout {
                    check_payout(s)?;
                }
                e.service = up.service.clone();
                e.operator_payout = up.operator_payout.clone();
                if !e.revoked {
                    e.pose_ban_height = None;
                    e.pose_penalty = 0;
                }
                e
            }
            Payload::ProUpdateRegistrar(up) => {
                let mut e = self.known(&up.pro_tx_hash)?.clone();
                let mut unsigned = Vec::new();
                up.encode_unsigned(&mut unsigned);
                let msg = protx_sig_hash(payload.tag(), &unsigned, &inputs);
                rusty_crypto::ed25519::verify(
                    &rusty_crypto::ed25519::PublicKey(e.owner_key),
                    &msg.0,
                    &rusty_crypto::ed25519::Signature(up.signature),
                )
                .map_err(|_| MnError::BadSignature)?;
                check_payout(&up.payout)?;
                check_bls_key(&up.operator_key)?;
                if up.operator_key != e.operator_key {
                    self.check_unique_operator(&up.operator_key, &up.pro_tx_hash)?;
                    // A new operator must announce itself (update service)
                    // before it is paid or selected again.
                    e.operator_key = up.operator_key;
                    e.revoked = false;
                    e.pose_ban_height = Some(height);
                }
                e.voting_key = up.voting_key;
                e.payout = up.payout.clone();
                e
            }
            Payload::ProRevoke(rev) => {
                let mut e = self.known(&rev.pro_tx_hash)?.clone();
                check_operator_sig(&e.operator_key, rev, &inputs)?;
                e.revoked = true;
                e.pose_ban_height.get_or_insert(height);
                e
            }
            _ => return Ok(None),
        };
        Ok(Some(entry))
    }

    fn known(&self, pro_tx_hash: &Hash256) -> Result<&MasternodeEntry> {
        self.entries
            .get(pro_tx_hash)
            .ok_or(MnError::UnknownMasternode(*pro_tx_hash))
    }

    fn check_register(
        &self,
        params: &ChainParams,
        tx: &Transaction,
        txid: Hash256,
        reg: &ProRegister,
        height: u64,
    ) -> Result<MasternodeEntry> {
        let collateral = tx
            .outputs
            .get(reg.collateral_vout as usize)
            .ok_or(MnError::MissingCollateral(reg.collateral_vout))?;
        if collateral.value != params.masternode.collateral {
            return Err(MnError::BadCollateralAmount {
                expected: params.masternode.collateral,
                found: collateral.value,
            });
        }
        if collateral.lock.as_p2pkh().is_none() {
            return Err(MnError::BadCollateralScript);
        }
        check_payout(&reg.payout)?;
        if reg.operator_reward_bps > MAX_OPERATOR_REWARD_BPS {
            return Err(MnError::BadOperatorReward(reg.operator_reward_bps));
        }
        check_bls_key(&reg.operator_key)?;
        self.check_unique_operator(&reg.operator_key, &txid)?;
        check_service(&reg.service)?;
        self.check_unique_service(&reg.service, &txid)?;
        Ok(MasternodeEntry {
            pro_tx_hash: txid,
            collateral: OutPoint::new(txid, reg.collateral_vout),
            owner_key: reg.owner_key,
            operator_key: reg.operator_key,
            voting_key: reg.voting_key,
            payout: reg.payout.clone(),
            operator_reward_bps: reg.operator_reward_bps,
            operator_payout: None,
            service: reg.service.clone(),
            registered_height: height,
            last_paid_height: height,
            pose_penalty: 0,
            pose_ban_height: None,
            revoked: false,
        })
    }

    fn check_unique_operator(&self, key: &BlsPublicKeyBytes, me: &Hash256) -> Result<()> {
        match self.by_operator_key(key) {
            Some(other) if &other.pro_tx_hash != me => {
                Err(MnError::DuplicateOperatorKey(other.pro_tx_hash))
            }
            _ => Ok(()),
        }
    }

    fn check_unique_service(&self, service: &str, me: &Hash256) -> Result<()> {
        match self.entries.values().find(|e| e.service == service) {
            Some(other) if &other.pro_tx_hash != me => {
                Err(MnError::DuplicateService(other.pro_tx_hash))
            }
            _ => Ok(()),
        }
    }

    /// Checks a quorum commitment against the DKG it ends.
    pub fn check_commitment(&self, params: &ChainParams, qc: &QuorumCommitment) -> Result<()> {
        let dkg = self
            .pending
            .iter()
            .find(|d| d.quorum_hash == qc.quorum_hash && d.quorum_height == qc.quorum_height)
            .ok_or(MnError::UnexpectedCommitment(qc.quorum_hash))?;
        let n = dkg.members.len();
        let bad = |why| MnError::BadCommitment(qc.quorum_hash, why);
        if qc.signers.len() != n || qc.valid_members.len() != n {
            return Err(bad("bit vector length differs from the member count"));
        }
        if qc.is_null() {
            if qc.signers.count() != 0
                || qc.valid_members.count() != 0
                || qc.quorum_sig != [0; 96]
                || qc.members_sig != [0; 96]
            {
                return Err(bad("a null commitment carries members or signatures"));
            }
            return Ok(());
        }
        let t = params.masternode.quorum_threshold;
        if qc.quorum_vvec.len() != t {
            return Err(bad("verification vector length differs from the threshold"));
        }
        if qc.valid_members.count() < t || qc.signers.count() < t {
            return Err(bad("fewer valid members or signers than the threshold"));
        }
        if qc.signers.ones().any(|i| !qc.valid_members.get(i)) {
            return Err(bad("a signer is not a valid member"));
        }
        let hash = qc.signing_hash();
        let quorum_pk = qc
            .public_key()
            .and_then(|pk| bls::PublicKey::from_bytes(pk).ok())
            .ok_or(bad("invalid quorum public key"))?;
        for p in &qc.quorum_vvec {
            bls::PublicKey::from_bytes(p).map_err(|_| bad("invalid verification vector"))?;
        }
        let quorum_sig = bls::Signature::from_bytes(&qc.quorum_sig)
            .map_err(|_| MnError::BadCommitmentSig(qc.quorum_hash))?;
        if !quorum_sig.verify(&hash.0, &quorum_pk) {
            return Err(MnError::BadCommitmentSig(qc.quorum_hash));
        }
        let members_sig = bls::Signature::from_bytes(&qc.members_sig)
            .map_err(|_| MnError::BadCommitmentSig(qc.quorum_hash))?;
        let mut msgs = Vec::with_capacity(qc.signers.count());
        let mut keys = Vec::with_capacity(qc.signers.count());
        for i in qc.signers.ones() {
            let (pro, key) = &dkg.members[i];
            msgs.push(member_commitment_message(&hash, pro));
            keys.push(bls::PublicKey::from_bytes(key).map_err(|_| MnError::BadOperatorKey)?);
        }
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.0.as_slice()).collect();
        if !members_sig.aggregate_verify(&refs, &keys) {
            return Err(MnError::BadCommitmentSig(qc.quorum_hash));
        }
        Ok(())
    }

    /// Validates every masternode rule of `block` at `height` (its hash
    /// `hash`) and applies it. `ancestor_at(h)` is the active chain's hash
    /// at a height below `height`. On error the state is unchanged. The
    /// caller checks the header's `mn_list_root` against [`Self::list_root`]
    /// afterwards (miners use this to compute it).
    #[allow(clippy::too_many_arguments)]
    pub fn apply_block(
        &mut self,
        params: &ChainParams,
        block: &Block,
        txids: &[Hash256],
        hash: Hash256,
        height: u64,
        reward: CoinbaseReward,
        ancestor_at: &dyn Fn(u64) -> Option<Hash256>,
    ) -> Result<MnUndo> {
        let mut undo = MnUndo::default();
        let at = (hash, height, reward);
        let result = self.apply_block_inner(params, block, txids, at, ancestor_at, &mut undo);
        match result {
            Ok(()) => Ok(undo),
            Err(e) => {
                self.undo(undo);
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_block_inner(
        &mut self,
        params: &ChainParams,
        block: &Block,
        txids: &[Hash256],
        (hash, height, reward): (Hash256, u64, CoinbaseReward),
        ancestor_at: &dyn Fn(u64) -> Option<Hash256>,
        undo: &mut MnUndo,
    ) -> Result<()> {
        // The payee, by the list before this block.
        if let Some(payee) = self.next_payee().cloned() {
            let coinbase_outputs = block
                .txs
                .first()
                .map(|t| t.outputs.as_slice())
                .unwrap_or(&[]);
            // Not the treasury payouts a superblock's coinbase ends with:
            // one of them must not stand in for the masternode's payment.
            let coinbase_outputs = &coinbase_outputs[..coinbase_outputs
                .len()
                .saturating_sub(reward.treasury_outputs)];
            for needed in payee.payments(reward.masternode) {
                if !coinbase_outputs.contains(&needed) {
                    return Err(MnError::WrongPayee {
                        expected: payee.pro_tx_hash,
                    });
                }
            }
            let mut paid = payee;
            paid.last_paid_height = height;
            self.put(paid, undo);
        }
        let mut chainlock: Option<&ChainLock> = None;
        let mut committed: Vec<Hash256> = Vec::new();
        for (tx, txid) in block.txs.iter().zip(txids).skip(1) {
            for input in &tx.inputs {
                if let Some(pro) = self.by_collateral.get(&input.prevout).copied() {
                    self.remove(&pro, undo);
                }
            }
            match &tx.payload {
                Some(Payload::QuorumCommitment(qc)) => {
                    if committed.contains(&qc.quorum_hash) {
                        return Err(MnError::DuplicateCommitment(qc.quorum_hash));
                    }
                    let window_end = qc
                        .quorum_height
                        .saturating_add(params.masternode.dkg_mining_window);
                    if height <= qc.quorum_height || height > window_end {
                        return Err(MnError::UnexpectedCommitment(qc.quorum_hash));
                    }
                    self.check_commitment(params, qc)?;
                    self.apply_commitment(params, qc, height, undo);
                    committed.push(qc.quorum_hash);
                }
                Some(Payload::ChainLock(cl)) => {
                    if chainlock.replace(cl).is_some() {
                        return Err(MnError::DuplicateChainLock);
                    }
                    if cl.height >= height || ancestor_at(cl.height) != Some(cl.block_hash) {
                        return Err(MnError::ChainLockNotAncestor(cl.height));
                    }
                    self.verify_chainlock(params, cl)?;
                }
                _ => {
                    if let Some(entry) = self.check_special_tx(params, tx, *txid, height)? {
                        self.put(entry, undo);
                    }
                }
            }
        }
        let expected_cl_hash = chainlock.map_or(Hash256::ZERO, ChainLock::hash);
        if block.header.chainlock_hash != expected_cl_hash {
            return Err(MnError::BadChainLockHash);
        }
        let embedded_lock = chainlock.map(|cl| cl.height);
        self.hand_over(params, embedded_lock, height, undo);
        // A DKG whose mining window closes here must have been committed.
        let window = params.masternode.dkg_mining_window;
        if let Some(open) = self
            .pending
            .iter()
            .find(|d| d.quorum_height.saturating_add(window) <= height)
        {
            return Err(MnError::MissingCommitment(open.quorum_hash));
        }
        let interval = params.masternode.quorum_interval.max(1);
        if height > 0 && height.is_multiple_of(interval) {
            let members = self.select_members(params, &hash);
            if !members.is_empty() {
                self.save_quorums(undo);
                self.pending.push(PendingDkg {
                    quorum_hash: hash,
                    quorum_height: height,
                    members,
                });
            }
        }
        Ok(())
    }

    fn apply_commitment(
        &mut self,
        params: &ChainParams,
        qc: &QuorumCommitment,
        height: u64,
        undo: &mut MnUndo,
    ) {
        self.save_quorums(undo);
        let Some(pos) = self
            .pending
            .iter()
            .position(|d| d.quorum_hash == qc.quorum_hash)
        else {
            return;
        };
        let dkg = self.pending.remove(pos);
        if qc.is_null() {
            return;
        }
        let mp = &params.masternode;
        for (i, (pro, _)) in dkg.members.iter().enumerate() {
            let Some(mut e) = self.entries.get(pro).cloned() else {
                continue;
            };
            if qc.valid_members.get(i) {
                e.pose_penalty = e.pose_penalty.saturating_sub(mp.pose_miss_penalty);
            } else {
                e.pose_penalty = e.pose_penalty.saturating_add(mp.pose_miss_penalty);
                if e.pose_penalty >= mp.pose_ban_threshold && e.pose_ban_height.is_none() {
                    e.pose_ban_height = Some(height);
                }
            }
            self.put(e, undo);
        }
        let first = !self.quorums.iter().any(|q| q.active_from.is_some());
        self.quorums.push(MinedQuorum {
            quorum_hash: qc.quorum_hash,
            quorum_height: qc.quorum_height,
            mined_height: height,
            members: dkg.members.into_iter().map(|(p, _)| p).collect(),
            valid_members: qc.valid_members.clone(),
            vvec: qc.quorum_vvec.clone(),
            active_from: first.then_some(height),
        });
        if self.quorums.len() > KEEP_QUORUMS {
            self.quorums.remove(0);
        }
    }

    /// Activates the quorums whose handover is due at `height`: those whose
    /// commitment block a ChainLock embedded in this block covers (signed
    /// by the quorum signing before them), and those that waited two quorum
    /// intervals. A partition that splits the masternodes across a DKG may
    /// let each side mine a quorum of its own; only the side that holds a
    /// threshold of the signing quorum can lock past its commitment, so
    /// only that side's new quorum starts signing, and the two sides never
    /// lock different blocks (found by `rusty-cli chaos
    /// --split-masternodes`). The timeout keeps a signing quorum that lost
    /// its threshold for good from ending ChainLocks; a partition that
    /// outlasts it can lock both sides again.
    fn hand_over(
        &mut self,
        params: &ChainParams,
        embedded_lock: Option<u64>,
        height: u64,
        undo: &mut MnUndo,
    ) {
        let timeout = params.masternode.quorum_interval.saturating_mul(2);
        let due = |q: &MinedQuorum| {
            q.active_from.is_none()
                && (embedded_lock.is_some_and(|h| h >= q.mined_height)
                    || height >= q.mined_height.saturating_add(timeout))
        };
        if !self.quorums.iter().any(due) {
            return;
        }
        self.save_quorums(undo);
        for q in self.quorums.iter_mut().filter(|q| due(q)) {
            q.active_from = Some(height);
        }
    }

    fn save_quorums(&self, undo: &mut MnUndo) {
        if undo.quorums.is_none() {
            undo.quorums = Some((self.pending.clone(), self.quorums.clone()));
        }
    }

    fn record(&self, pro: &Hash256, undo: &mut MnUndo) {
        if !undo.entries.iter().any(|(h, _)| h == pro) {
            undo.entries.push((*pro, self.entries.get(pro).cloned()));
        }
    }

    fn put(&mut self, entry: MasternodeEntry, undo: &mut MnUndo) {
        self.record(&entry.pro_tx_hash, undo);
        self.by_collateral
            .insert(entry.collateral, entry.pro_tx_hash);
        self.entries.insert(entry.pro_tx_hash, entry);
    }

    fn remove(&mut self, pro: &Hash256, undo: &mut MnUndo) {
        self.record(pro, undo);
        if let Some(e) = self.entries.remove(pro) {
            self.by_collateral.remove(&e.collateral);
        }
    }

    /// Puts an entry without undo (a miner's scratch copy).
    pub fn put_unrecorded(&mut self, entry: MasternodeEntry) {
        let mut undo = MnUndo::default();
        self.put(entry, &mut undo);
    }

    /// Reverts a block's changes.
    pub fn undo(&mut self, undo: MnUndo) {
        for (pro, before) in undo.entries.into_iter().rev() {
            if let Some(e) = self.entries.remove(&pro) {
                self.by_collateral.remove(&e.collateral);
            }
            if let Some(e) = before {
                self.by_collateral.insert(e.collateral, e.pro_tx_hash);
                self.entries.insert(pro, e);
            }
        }
        if let Some((pending, quorums)) = undo.quorums {
            self.pending = pending;
            self.quorums = quorums;
        }
    }
}

/// What a block's coinbase pays the masternode payee, and how many
/// treasury payouts it ends with (a superblock's; 0 elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinbaseReward {
    pub masternode: Amount,
    pub treasury_outputs: usize,
}

impl CoinbaseReward {
    /// A block without treasury payouts.
    pub fn masternode_only(masternode: Amount) -> CoinbaseReward {
        CoinbaseReward {
            masternode,
            treasury_outputs: 0,
        }
    }
}

/// The score that orders masternodes within a quorum (and quorums for a
/// request): `hash(a, b)`, lowest first.
pub fn member_score(a: &Hash256, b: &Hash256) -> Hash256 {
    hash_pair(a, b)
}

/// What member `pro_tx_hash` signs with its operator key for commitment
/// hash `hash` (distinct per member, so the aggregate needs no proofs of
/// possession).
pub fn member_commitment_message(hash: &Hash256, pro_tx_hash: &Hash256) -> Hash256 {
    hash_pair(hash, pro_tx_hash)
}

/// `BLAKE3(a ‖ b)` in the quorum-commitment domain.
fn hash_pair(a: &Hash256, b: &Hash256) -> Hash256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&a.0);
    buf[32..].copy_from_slice(&b.0);
    Hash256::domain_hash(Domain::QuorumCommitment, &buf)
}

fn check_operator_sig<P: OperatorSigned>(
    key: &BlsPublicKeyBytes,
    payload: &P,
    inputs: &Hash256,
) -> Result<()> {
    let pk = bls::PublicKey::from_bytes(key).map_err(|_| MnError::BadOperatorKey)?;
    let sig = bls::Signature::from_bytes(payload.signature()).map_err(|_| MnError::BadSignature)?;
    if sig.verify(&payload.sig_hash(inputs).0, &pk) {
        Ok(())
    } else {
        Err(MnError::BadSignature)
    }
}

fn check_bls_key(key: &BlsPublicKeyBytes) -> Result<()> {
    bls::PublicKey::from_bytes(key)
        .map(|_| ())
        .map_err(|_| MnError::BadOperatorKey)
}

fn check_payout(script: &Script) -> Result<()> {
    if script.len() > MAX_PAYOUT_SCRIPT || script.as_p2pkh().is_none() {
        return Err(MnError::BadPayout);
    }
    Ok(())
}

/// A service must look like a multiaddr (`/proto/value/…`); the node parses
/// it fully before dialing.
fn check_service(service: &str) -> Result<()> {
    let ok = service.len() <= MAX_SERVICE_LEN
        && service.starts_with('/')
        && service.contains("/p2p/")
        && service.split('/').skip(1).all(|part| !part.is_empty());
    if ok {
        Ok(())
    } else {
        Err(MnError::BadService(service.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use rusty_crypto::bls;
    use rusty_shared_types::{Amount, Block, Hash256, Network, TxOut};

    use super::*;
    use crate::{
        chain::ChainError, state::NodeState, test_utils::NOW, validation::ValidationError,
    };

    fn params() -> &'static ChainParams {
        Network::Dev.params()
    }

    /// A dev state whose wallet registered `n` masternodes: the state,
    /// the registrations and the operator keys.
    fn with_masternodes(
        dir: &std::path::Path,
        n: usize,
    ) -> (NodeState, Vec<Hash256>, Vec<bls::SecretKey>) {
        let (s, pros, keys, _) = crate::test_utils::with_masternodes(dir, n);
        (s, pros, keys)
    }

    /// A template on the tip, altered by `edit`, solved and submitted.
    fn submit_edited(
        s: &mut NodeState,
        edit: impl FnOnce(&mut Block),
    ) -> std::result::Result<(), ChainError> {
        let addr = s.wallet_mut().unwrap().new_address().unwrap();
        let t = s.block_template(&addr.lock_script(), NOW, Vec::new());
        let mut block = t.block;
        edit(&mut block);
        block.header.merkle_root = crate::validation::block_merkle_root(&block.txs);
        crate::pow::solve(&mut block.header, &t.target, u64::MAX).unwrap();
        s.submit_block(block, NOW).map(|_| ())
    }

    #[test]
    fn state_and_undo_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, _) = with_masternodes(dir.path(), 3);
        let state = s.chain().mn().clone();
        rusty_shared_types::arbitrary::assert_round_trip(&state);
        let tip = s.chain().tip();
        let undo = s
            .chain()
            .db()
            .get::<crate::tables::MnUndoTable>(&tip)
            .unwrap()
            .unwrap();
        assert!(!undo.entries.is_empty());
        rusty_shared_types::arbitrary::assert_round_trip(&undo);
    }

    proptest::proptest! {
        /// Random bytes never panic the decoders of the masternode
        /// records, and whatever decodes re-encodes byte for byte.
        #[test]
        fn record_decoders_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..800)) {
            use rusty_shared_types::{decode_exact, Encode};
            if let Ok(v) = decode_exact::<MnState>(&bytes) {
                proptest::prop_assert_eq!(v.encode(), bytes.clone());
            }
            if let Ok(v) = decode_exact::<MnUndo>(&bytes) {
                proptest::prop_assert_eq!(v.encode(), bytes.clone());
            }
            if let Ok(v) = decode_exact::<MasternodeEntry>(&bytes) {
                proptest::prop_assert_eq!(v.encode(), bytes);
            }
        }
    }

    #[test]
    fn repeated_dkg_misses_ban_and_participation_forgives() {
        let dir = tempfile::tempdir().unwrap();
        let (s, pros, _) = with_masternodes(dir.path(), 3);
        let mut mn = s.chain().mn().clone();
        let p = params();
        let members: Vec<(Hash256, [u8; 48])> = pros
            .iter()
            .map(|h| (*h, mn.get(h).unwrap().operator_key))
            .collect();
        // Member 2 misses three DKGs in a row; members 0 and 1 take part.
        for round in 0..3u64 {
            let q = Hash256([round as u8 + 1; 32]);
            mn.pending.push(PendingDkg {
                quorum_hash: q,
                quorum_height: 24 * (round + 1),
                members: members.clone(),
            });
            let qc = QuorumCommitment {
                quorum_hash: q,
                quorum_height: 24 * (round + 1),
                signers: BitSet::from_bools(&[true, true, false]),
                valid_members: BitSet::from_bools(&[true, true, false]),
                quorum_vvec: vec![[0; 48]; p.masternode.quorum_threshold],
                quorum_sig: [0; 96],
                members_sig: [0; 96],
            };
            let mut undo = MnUndo::default();
            mn.apply_commitment(p, &qc, 24 * (round + 1) + 5, &mut undo);
            let missed = mn.get(&pros[2]).unwrap();
            let expected = p.masternode.pose_miss_penalty * (round as u32 + 1);
            assert_eq!(missed.pose_penalty, expected);
            assert_eq!(
                missed.pose_ban_height.is_some(),
                expected >= p.masternode.pose_ban_threshold
            );
            assert_eq!(mn.get(&pros[0]).unwrap().pose_penalty, 0);
        }
        assert!(
            !mn.get(&pros[2]).unwrap().is_valid(),
            "banned after three misses"
        );
        assert!(mn.next_payee().unwrap().pro_tx_hash != pros[2]);
        assert!(mn
            .select_members(p, &Hash256([9; 32]))
            .iter()
            .all(|(h, _)| *h != pros[2]));
        // A null commitment penalises nobody.
        let before = mn.get(&pros[0]).unwrap().pose_penalty;
        mn.pending.push(PendingDkg {
            quorum_hash: Hash256([7; 32]),
            quorum_height: 96,
            members: members.clone(),
        });
        let mut undo = MnUndo::default();
        mn.apply_commitment(
            p,
            &QuorumCommitment::null(Hash256([7; 32]), 96, 3),
            100,
            &mut undo,
        );
        assert_eq!(mn.get(&pros[0]).unwrap().pose_penalty, before);
    }

    /// The first quorum signs at once; a later one only once a block embeds
    /// a ChainLock covering its commitment (signed by the quorum before
    /// it), or after two quorum intervals without one.
    #[test]
    fn a_new_quorum_signs_only_after_its_handover() {
        let p = params();
        let mut mn = MnState::default();
        let members = vec![(Hash256([1; 32]), [0; 48]); 3];
        let mine = |mn: &mut MnState, round: u8, at: u64| {
            let q = Hash256([round; 32]);
            mn.pending.push(PendingDkg {
                quorum_hash: q,
                quorum_height: at - 5,
                members: members.clone(),
            });
            let mut qc = QuorumCommitment::null(q, at - 5, 3);
            qc.valid_members = BitSet::from_bools(&[true, true, true]);
            qc.quorum_vvec = vec![[round; 48]; p.masternode.quorum_threshold];
            mn.apply_commitment(p, &qc, at, &mut MnUndo::default());
            q
        };
        let signer = |mn: &MnState, h: u64| {
            mn.signing_quorum(p, h, &ChainLock::request_id(h))
                .map(|q| q.quorum_hash)
        };
        let first = mine(&mut mn, 1, 29);
        assert_eq!(signer(&mn, 29), None);
        assert_eq!(signer(&mn, 30), Some(first));

        let second = mine(&mut mn, 2, 53);
        assert_eq!(signer(&mn, 60), Some(first), "waits for its handover");
        // A lock below its commitment block hands nothing over.
        mn.hand_over(p, Some(52), 54, &mut MnUndo::default());
        assert_eq!(signer(&mn, 60), Some(first));
        // A lock of its commitment block, embedded at 55, does.
        let mut undo = MnUndo::default();
        mn.hand_over(p, Some(53), 55, &mut undo);
        assert_eq!(mn.quorum(&second).unwrap().active_from, Some(55));
        assert_eq!(signer(&mn, 55), Some(first));
        assert_eq!(signer(&mn, 56), Some(second));
        // The undo record restores the waiting quorum.
        let (_, before) = undo.quorums.clone().expect("quorums saved");
        assert_eq!(before[1].active_from, None);

        // Without any lock, the third takes over two intervals after.
        let third = mine(&mut mn, 3, 77);
        let timeout = 2 * p.masternode.quorum_interval;
        mn.hand_over(p, None, 77 + timeout - 1, &mut MnUndo::default());
        assert_eq!(signer(&mn, 77 + timeout), Some(second));
        mn.hand_over(p, None, 77 + timeout, &mut MnUndo::default());
        assert_eq!(signer(&mn, 77 + timeout + 1), Some(third));
    }

    #[test]
    fn payee_order_and_reward_split_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, pros, _) = with_masternodes(dir.path(), 3);
        // Three blocks pay three masternodes, lowest last-paid first.
        let mut paid = Vec::new();
        for _ in 0..3 {
            let expected = s.chain().mn().next_payee().unwrap().pro_tx_hash;
            let h = s.chain().height() + 1;
            submit_edited(&mut s, |_| {}).unwrap();
            assert_eq!(s.chain().mn().get(&expected).unwrap().last_paid_height, h);
            paid.push(expected);
        }
        paid.sort();
        let mut all = pros.clone();
        all.sort();
        assert_eq!(paid, all);

        // Paying the masternode share to the miner instead: invalid.
        let tip = s.chain().tip();
        let err = submit_edited(&mut s, |b| {
            let mn = b.txs[0].outputs.remove(1);
            b.txs[0].outputs[0].value = b.txs[0].outputs[0].value.checked_add(mn.value).unwrap();
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::Invalid(ValidationError::Masternode(MnError::WrongPayee { .. }))
            ),
            "{err}"
        );
        // Paying another (valid) masternode: invalid too.
        let wrong = s
            .chain()
            .mn()
            .entries()
            .find(|e| Some(e.pro_tx_hash) != s.chain().mn().next_payee().map(|p| p.pro_tx_hash))
            .unwrap()
            .payout
            .clone();
        let err = submit_edited(&mut s, |b| b.txs[0].outputs[1].lock = wrong).unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::Invalid(ValidationError::Masternode(MnError::WrongPayee { .. }))
            ),
            "{err}"
        );
        // Claiming the treasury's share: too much.
        let err = submit_edited(&mut s, |b| {
            b.txs[0].outputs[0].value = b.txs[0].outputs[0]
                .value
                .checked_add(params().treasury_reward(1))
                .unwrap();
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::Invalid(ValidationError::BadCoinbaseAmount { .. })
            ),
            "{err}"
        );
        // A wrong list root.
        let err = submit_edited(&mut s, |b| b.header.mn_list_root = Hash256([1; 32])).unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::Invalid(ValidationError::Masternode(MnError::BadListRoot))
            ),
            "{err}"
        );
        assert_eq!(s.chain().tip(), tip, "nothing connected");
    }

    #[test]
    fn the_list_follows_reorgs_and_collateral_spends() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, pros, _) = with_masternodes(dir.path(), 2);
        let before = s.chain().mn().clone();
        let fork_point = s.chain().tip();
        let height = s.chain().height();
        // Spend the first collateral (the wallet's key) and mine it.
        let e = s.chain().mn().get(&pros[0]).unwrap().clone();
        let coin = s.chain().coin(&e.collateral).unwrap().unwrap();
        let key = s
            .wallet()
            .unwrap()
            .key_for(&coin.output.lock.as_p2pkh().unwrap())
            .unwrap();
        let k = crate::test_utils::Key {
            address: rusty_shared_types::Address::p2pkh(
                Network::Dev,
                coin.output.lock.as_p2pkh().unwrap(),
            ),
            secret: key,
        };
        let spend = k.spend(
            e.collateral,
            &coin.output,
            vec![TxOut {
                value: Amount::from_coins(9).unwrap(),
                lock: k.address.lock_script(),
            }],
        );
        s.accept_transaction(spend, NOW).unwrap();
        let addr = s.wallet_mut().unwrap().new_address().unwrap();
        s.generate(1, &addr, u64::MAX, NOW).unwrap();
        assert!(
            s.chain().mn().get(&pros[0]).is_none(),
            "spending the collateral removes it"
        );
        assert_eq!(s.chain().mn().len(), 1);

        // A longer branch from before the spend: the masternode is back.
        let mut cur = before;
        let mut parent = fork_point;
        for i in 0..3u64 {
            let h = height + 1 + i;
            let block = side_block(&s, parent, h, &mut cur);
            parent = block.hash();
            let _ = s.submit_block(block, NOW);
        }
        assert_eq!(
            s.chain().tip(),
            parent,
            "reorganised onto the longer branch"
        );
        assert!(
            s.chain().mn().get(&pros[0]).is_some(),
            "the reorg restored the masternode"
        );
        assert_eq!(s.chain().mn(), &cur);
        assert_eq!(
            s.chain().mn().list_root(),
            s.chain().tip_entry().header.mn_list_root
        );
    }

    /// A coinbase-only block on `parent` at `height` paying the payee of
    /// `mn`, which it then applies to `mn`.
    fn side_block(s: &NodeState, parent: Hash256, height: u64, mn: &mut MnState) -> Block {
        let p = params();
        let payments = mn.expected_payments(p.masternode_reward(height));
        let total: u64 = payments.iter().map(|o| o.value.units()).sum();
        let mut outputs = vec![TxOut {
            value: Amount::from_units(p.coinbase_subsidy(height).units() - total).unwrap(),
            lock: crate::test_utils::Key::new(3).address.lock_script(),
        }];
        outputs.extend(payments);
        let coinbase = rusty_shared_types::Transaction {
            version: 1,
            inputs: vec![],
            outputs,
            lock_time: 0,
            payload: Some(rusty_shared_types::Payload::Coinbase(
                rusty_shared_types::CoinbasePayload {
                    height,
                    extra: vec![height as u8],
                },
            )),
        };
        let txs = vec![coinbase];
        let parent_entry = s.chain().entry(&parent).unwrap();
        let mut header = rusty_shared_types::BlockHeader {
            version: 1,
            prev_hash: parent,
            merkle_root: crate::validation::block_merkle_root(&txs),
            state_root: Hash256::ZERO,
            mn_list_root: Hash256::ZERO,
            chainlock_hash: Hash256::ZERO,
            time: parent_entry.header.time + 1,
            bits: p.pow_limit_bits,
            nonce: 0,
        };
        let block = Block {
            header: header.clone(),
            txs: txs.clone(),
        };
        let txids: Vec<Hash256> = txs.iter().map(|t| t.txid()).collect();
        mn.apply_block(
            p,
            &block,
            &txids,
            Hash256::ZERO,
            height,
            CoinbaseReward::masternode_only(p.masternode_reward(height)),
            &|_| None,
        )
        .unwrap();
        header.mn_list_root = mn.list_root();
        let target = crate::pow::target_from_compact(header.bits).unwrap();
        crate::pow::solve(&mut header, &target, u64::MAX).unwrap();
        Block { header, txs }
    }
}
