//! One member's view of one DKG (Joint-Feldman over BLS12-381, DIP-6's
//! phases): a pure state machine. The service feeds it messages and the
//! chain height; it answers with the messages to send. Everything it does
//! is a function of its seed and the messages it saw, so replaying the
//! persisted message log after a restart rebuilds it exactly.
//!
//! Phases, each ending when every expected message is in or when its last
//! block (`quorum_height + k · dkg_phase_blocks`) has passed:
//! 1. **contribute** — send the verification vector and every member's
//!    share, encrypted to its operator key;
//! 2. **complain** — name the members whose share to us was missing or
//!    did not verify (an empty complaint says "all fine");
//! 3. **justify** — a member complained about reveals those shares;
//! 4. **commit** — each member sends its premature commitment (valid
//!    members, quorum vector, signatures); once `threshold` members agree,
//!    anyone holding their messages builds the final commitment.

use std::collections::BTreeMap;

use rand::{rngs::StdRng, SeedableRng};
use rusty_crypto::bls::{self, EncryptedShare, MemberId, Polynomial, VerificationVector};
use rusty_shared_types::{
    masternode::{commitment_signing_hash, BlsPublicKeyBytes},
    BitSet, ChainParams, Hash256, QuorumCommitment,
};

use super::messages::{DkgBody, DkgMessage, ENCRYPTED_SHARE_SIZE};
use rusty_core::masternode::{member_commitment_message, PendingDkg};

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Contribute,
    Complain,
    Justify,
    Commit,
    /// A final commitment was built.
    Finalized,
    /// Fewer than `threshold` members agreed.
    Failed,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Contribute => "contribute",
            Phase::Complain => "complain",
            Phase::Justify => "justify",
            Phase::Commit => "commit",
            Phase::Finalized => "finalized",
            Phase::Failed => "failed",
        }
    }
}

/// Why a DKG message was refused (the sender is to blame unless noted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkgError {
    #[error("sender is not a member of this DKG")]
    NotMember,
    #[error("bad operator signature")]
    BadSignature,
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Not the sender's fault: we already have its message for the phase.
    #[error("duplicate message")]
    Duplicate,
}

/// Shares a member revealed in its justification: `(accuser, share)`.
type Revealed = Vec<(u16, [u8; 32])>;

/// A member's received contribution and what we learned from it.
#[derive(Debug, Clone)]
struct Received {
    vvec: VerificationVector,
    /// Our share from it, when it decrypted and verified.
    share: Option<bls::SecretKey>,
}

/// One member's session.
#[derive(Debug)]
pub struct DkgSession {
    pub quorum_hash: Hash256,
    pub quorum_height: u64,
    threshold: usize,
    phase_blocks: u64,
    members: Vec<(Hash256, BlsPublicKeyBytes)>,
    ids: Vec<MemberId>,
    pub my_index: usize,
    operator: bls::SecretKey,
    poly: Polynomial,
    seed: [u8; 32],
    phase: Phase,
    contributions: Vec<Option<Received>>,
    complaints: Vec<Option<BitSet>>,
    justifications: Vec<Option<Revealed>>,
    prematures: Vec<Option<DkgBody>>,
    /// Our own message per phase (re-sent until acknowledged).
    own: BTreeMap<u8, DkgMessage>,
    /// `(phase, member)` pairs that acknowledged our message.
    acked: std::collections::HashSet<(u8, usize)>,
    /// Our key share and the quorum vector, once computed.
    result: Option<(bls::SecretKey, Vec<BlsPublicKeyBytes>, BitSet)>,
    pub commitment: Option<QuorumCommitment>,
}

impl DkgSession {
    /// A session for `dkg` as member `my_index`; `seed` determines our
    /// polynomial and encryption randomness (persist it to survive a
    /// restart with the same contribution).
    pub fn new(
        params: &ChainParams,
        dkg: &PendingDkg,
        my_index: usize,
        operator: bls::SecretKey,
        seed: [u8; 32],
    ) -> Result<DkgSession, bls::BlsError> {
        let n = dkg.members.len();
        let mut rng = StdRng::from_seed(seed);
        let poly = Polynomial::random(params.masternode.quorum_threshold, &mut rng)?;
        Ok(DkgSession {
            quorum_hash: dkg.quorum_hash,
            quorum_height: dkg.quorum_height,
            threshold: params.masternode.quorum_threshold,
            phase_blocks: params.masternode.dkg_phase_blocks.max(1),
            ids: dkg
                .members
                .iter()
                .map(|(h, _)| MemberId::from_identity(&h.0))
                .collect(),
            members: dkg.members.clone(),
            my_index,
            operator,
            poly,
            seed,
            phase: Phase::Contribute,
            contributions: vec![None; n],
            complaints: vec![None; n],
            justifications: vec![None; n],
            prematures: vec![None; n],
            own: BTreeMap::new(),
            acked: Default::default(),
            result: None,
            commitment: None,
        })
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn members(&self) -> &[(Hash256, BlsPublicKeyBytes)] {
        &self.members
    }

    pub fn my_pro_tx_hash(&self) -> Hash256 {
        self.members[self.my_index].0
    }

    /// Counts of messages received per phase (for `quorum dkgstatus`).
    pub fn received_counts(&self) -> [usize; 4] {
        [
            self.contributions.iter().flatten().count(),
            self.complaints.iter().flatten().count(),
            self.justifications.iter().flatten().count(),
            self.prematures.iter().flatten().count(),
        ]
    }

    /// Members we currently consider valid (after the justify phase).
    pub fn valid_members(&self) -> Option<&BitSet> {
        self.result.as_ref().map(|(_, _, v)| v)
    }

    /// Our key share of the quorum our commitment describes, once the DKG
    /// finalized. Computed for the commitment's valid set, not for our own
    /// view of it: a member that restarted mid-DKG may have judged a member
    /// invalid whose contribution reached it only later, and a share
    /// summed over its own set would not match the quorum's vector.
    pub fn key_share(&self) -> Option<bls::SecretKey> {
        match self.phase {
            Phase::Finalized => self
                .commitment
                .as_ref()
                .and_then(|qc| self.share_for(&qc.valid_members)),
            _ => None,
        }
    }

    /// Our key share of the quorum whose valid members are `valid`: the
    /// sum of the shares each of them dealt us. `None` if one of those
    /// shares is missing or does not verify (we cannot sign for it then).
    pub fn share_for(&self, valid: &BitSet) -> Option<bls::SecretKey> {
        if valid.len() != self.members.len() {
            return None;
        }
        let shares = valid
            .ones()
            .map(|j| self.share_from(j))
            .collect::<Option<Vec<_>>>()?;
        bls::sum_shares(&shares).ok()
    }

    /// The share member `j` dealt us, verified against its vector: from its
    /// contribution, or revealed in its answer to a complaint of ours.
    fn share_from(&self, j: usize) -> Option<bls::SecretKey> {
        let c = self.contributions.get(j)?.as_ref()?;
        if let Some(share) = &c.share {
            return Some(share.clone());
        }
        let me = u16::try_from(self.my_index).ok()?;
        let (_, bytes) = self.justifications[j]
            .as_ref()?
            .iter()
            .find(|(k, _)| *k == me)?;
        let share = bls::SecretKey::from_bytes(bytes).ok()?;
        c.vvec
            .verify_share(self.ids[self.my_index], &share)
            .then_some(share)
    }

    fn sign(&self, body: DkgBody) -> DkgMessage {
        let mut msg = DkgMessage {
            quorum_hash: self.quorum_hash,
            sender: self.my_pro_tx_hash(),
            body,
            signature: [0; 96],
        };
        msg.signature = self.operator.sign(&msg.signing_hash().0).to_bytes();
        msg
    }

    /// Context bound to an encrypted share: the quorum and the recipient.
    fn share_context(&self, recipient: usize) -> Vec<u8> {
        let mut c = self.quorum_hash.0.to_vec();
        c.extend_from_slice(&(recipient as u64).to_le_bytes());
        c
    }

    /// Our contribution (deterministic from the seed).
    fn contribution(&self) -> Result<DkgMessage, bls::BlsError> {
        let vvec = self.poly.verification_vector()?;
        // Encryption randomness from the seed too: a restarted member sends
        // the very same message.
        let mut rng = StdRng::from_seed(*blake3::keyed_hash(&self.seed, b"encrypt").as_bytes());
        let mut shares = Vec::with_capacity(self.members.len());
        for (i, (_, key)) in self.members.iter().enumerate() {
            let recipient = bls::PublicKey::from_bytes(key)?;
            let share = self.poly.share(self.ids[i])?;
            let enc =
                EncryptedShare::encrypt(&share, &recipient, &self.share_context(i), &mut rng)?;
            let mut bytes = [0u8; ENCRYPTED_SHARE_SIZE];
            bytes[..48].copy_from_slice(&enc.ephemeral);
            bytes[48..72].copy_from_slice(&enc.nonce);
            if enc.ciphertext.len() != 48 {
                return Err(bls::BlsError::Decryption);
            }
            bytes[72..].copy_from_slice(&enc.ciphertext);
            shares.push(bytes);
        }
        Ok(self.sign(DkgBody::Contribution {
            vvec: vvec.commitments().iter().map(|p| p.to_bytes()).collect(),
            shares,
        }))
    }

    /// Handles a message (ours included, when replaying). `Ok(true)` if it
    /// was new.
    pub fn receive(&mut self, msg: &DkgMessage) -> Result<bool, DkgError> {
        if msg.quorum_hash != self.quorum_hash {
            return Err(DkgError::NotMember);
        }
        let j = self
            .members
            .iter()
            .position(|(h, _)| *h == msg.sender)
            .ok_or(DkgError::NotMember)?;
        let key =
            bls::PublicKey::from_bytes(&self.members[j].1).map_err(|_| DkgError::NotMember)?;
        let sig = bls::Signature::from_bytes(&msg.signature).map_err(|_| DkgError::BadSignature)?;
        if !sig.verify(&msg.signing_hash().0, &key) {
            return Err(DkgError::BadSignature);
        }
        let n = self.members.len();
        match &msg.body {
            DkgBody::Contribution { vvec, shares } => {
                if self.contributions[j].is_some() {
                    return Err(DkgError::Duplicate);
                }
                if vvec.len() != self.threshold || shares.len() != n {
                    return Err(DkgError::Malformed("contribution size"));
                }
                let points = vvec
                    .iter()
                    .map(|p| bls::PublicKey::from_bytes(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| DkgError::Malformed("verification vector"))?;
                let vvec = VerificationVector::new(points)
                    .map_err(|_| DkgError::Malformed("verification vector"))?;
                let share = self.decrypt_share(&shares[self.my_index], &vvec);
                self.contributions[j] = Some(Received { vvec, share });
            }
            DkgBody::Complaint { bad } => {
                if self.complaints[j].is_some() {
                    return Err(DkgError::Duplicate);
                }
                if bad.len() != n {
                    return Err(DkgError::Malformed("complaint size"));
                }
                self.complaints[j] = Some(bad.clone());
            }
            DkgBody::Justification { shares } => {
                if self.justifications[j].is_some() {
                    return Err(DkgError::Duplicate);
                }
                if shares.len() > n || shares.iter().any(|(i, _)| usize::from(*i) >= n) {
                    return Err(DkgError::Malformed("justification"));
                }
                self.justifications[j] = Some(shares.clone());
            }
            DkgBody::Premature { valid, vvec, .. } => {
                if self.prematures[j].is_some() {
                    return Err(DkgError::Duplicate);
                }
                if valid.len() != n || vvec.len() != self.threshold {
                    return Err(DkgError::Malformed("premature commitment"));
                }
                self.prematures[j] = Some(msg.body.clone());
            }
        }
        if j == self.my_index {
            self.own.insert(msg.body.phase(), msg.clone());
        }
        Ok(true)
    }

    fn decrypt_share(
        &self,
        bytes: &[u8; ENCRYPTED_SHARE_SIZE],
        vvec: &VerificationVector,
    ) -> Option<bls::SecretKey> {
        let mut ephemeral = [0u8; 48];
        ephemeral.copy_from_slice(&bytes[..48]);
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&bytes[48..72]);
        let enc = EncryptedShare {
            ephemeral,
            nonce,
            ciphertext: bytes[72..].to_vec(),
        };
        let share = enc
            .decrypt(&self.operator, &self.share_context(self.my_index))
            .ok()?;
        vvec.verify_share(self.ids[self.my_index], &share)
            .then_some(share)
    }

    fn phase_deadline(&self, phase: Phase) -> u64 {
        let k = match phase {
            Phase::Contribute => 1,
            Phase::Complain => 2,
            Phase::Justify => 3,
            _ => 4,
        };
        self.quorum_height
            .saturating_add(self.phase_blocks.saturating_mul(k))
    }

    fn all_in<T>(slots: &[Option<T>], expected: impl Fn(usize) -> bool) -> bool {
        slots
            .iter()
            .enumerate()
            .all(|(i, s)| s.is_some() || !expected(i))
    }

    /// Moves through every phase that is complete at `height`. Returns our
    /// new messages (to store, handle and send to every member).
    pub fn advance(&mut self, height: u64) -> Vec<DkgMessage> {
        let mut out = Vec::new();
        loop {
            let before = self.phase;
            match self.phase {
                Phase::Contribute => {
                    if !self.own.contains_key(&0) {
                        if let Ok(msg) = self.contribution() {
                            self.adopt(&msg, &mut out);
                        }
                    }
                    if Self::all_in(&self.contributions, |_| true)
                        || height >= self.phase_deadline(Phase::Contribute)
                    {
                        if !self.own.contains_key(&1) {
                            let bad: Vec<bool> = self
                                .contributions
                                .iter()
                                .map(|c| c.as_ref().is_none_or(|c| c.share.is_none()))
                                .collect();
                            let msg = self.sign(DkgBody::Complaint {
                                bad: BitSet::from_bools(&bad),
                            });
                            self.adopt(&msg, &mut out);
                        }
                        self.phase = Phase::Complain;
                    }
                }
                Phase::Complain => {
                    let contributed = |i: usize| self.contributions[i].is_some();
                    if Self::all_in(&self.complaints, contributed)
                        || height >= self.phase_deadline(Phase::Complain)
                    {
                        let me = self.my_index;
                        let accusers: Vec<usize> = self
                            .complaints
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.get(me)))
                            .map(|(i, _)| i)
                            .collect();
                        if !accusers.is_empty() && !self.own.contains_key(&2) {
                            let shares = accusers
                                .iter()
                                .filter_map(|&i| {
                                    let s = self.poly.share(self.ids[i]).ok()?;
                                    Some((u16::try_from(i).ok()?, s.to_bytes()))
                                })
                                .collect();
                            let msg = self.sign(DkgBody::Justification { shares });
                            self.adopt(&msg, &mut out);
                        }
                        self.phase = Phase::Justify;
                    }
                }
                Phase::Justify => {
                    let accused = |j: usize| {
                        self.complaints.iter().flatten().any(|c| c.get(j))
                            && self.contributions[j].is_some()
                    };
                    if Self::all_in(&self.justifications, accused)
                        || height >= self.phase_deadline(Phase::Justify)
                    {
                        self.compute_result();
                        match self.premature() {
                            Some(msg) => {
                                if !self.own.contains_key(&3) {
                                    self.adopt(&msg, &mut out);
                                }
                                self.phase = Phase::Commit;
                            }
                            None => self.phase = Phase::Failed,
                        }
                    }
                }
                Phase::Commit => {
                    let valid = self
                        .result
                        .as_ref()
                        .map(|(_, _, v)| v.clone())
                        .unwrap_or_default();
                    if Self::all_in(&self.prematures, |i| valid.get(i))
                        || height >= self.phase_deadline(Phase::Commit)
                    {
                        self.phase = match self.build_commitment() {
                            Some(qc) => {
                                self.commitment = Some(qc);
                                Phase::Finalized
                            }
                            None if height >= self.phase_deadline(Phase::Commit) => Phase::Failed,
                            None => Phase::Commit,
                        };
                    }
                }
                Phase::Finalized | Phase::Failed => {}
            }
            if self.phase == before {
                return out;
            }
        }
    }

    fn adopt(&mut self, msg: &DkgMessage, out: &mut Vec<DkgMessage>) {
        if self.receive(msg).is_ok() {
            out.push(msg.clone());
        }
    }

    /// Valid members, our key share and the quorum vector from everything
    /// received: a member is valid if it contributed, answered every
    /// complaint against it with a share that verifies, and we hold a
    /// verified share from it.
    fn compute_result(&mut self) {
        let n = self.members.len();
        let mut valid = vec![false; n];
        let mut vvecs = Vec::new();
        for (j, slot) in valid.iter_mut().enumerate() {
            let Some(c) = &self.contributions[j] else {
                continue;
            };
            let answered = |(i, complaint): (usize, &Option<BitSet>)| {
                if !complaint.as_ref().is_some_and(|b| b.get(j)) {
                    return true;
                }
                self.justifications[j]
                    .as_ref()
                    .and_then(|s| s.iter().find(|(k, _)| usize::from(*k) == i))
                    .and_then(|(_, bytes)| bls::SecretKey::from_bytes(bytes).ok())
                    .is_some_and(|s| c.vvec.verify_share(self.ids[i], &s))
            };
            if self.complaints.iter().enumerate().all(answered) && self.share_from(j).is_some() {
                *slot = true;
                vvecs.push(c.vvec.clone());
            }
        }
        if valid.iter().filter(|v| **v).count() < self.threshold {
            return;
        }
        let valid = BitSet::from_bools(&valid);
        let (Some(share), Ok(vvec)) = (self.share_for(&valid), VerificationVector::sum(&vvecs))
        else {
            return;
        };
        let vvec_bytes = vvec.commitments().iter().map(|p| p.to_bytes()).collect();
        self.result = Some((share, vvec_bytes, valid));
    }

    fn premature(&self) -> Option<DkgMessage> {
        if let Some(own) = self.own.get(&3) {
            return Some(own.clone());
        }
        let (share, vvec, valid) = self.result.as_ref()?;
        if !valid.get(self.my_index) {
            return None;
        }
        let hash = commitment_signing_hash(&self.quorum_hash, self.quorum_height, valid, vvec);
        let op_sig = self
            .operator
            .sign(&member_commitment_message(&hash, &self.my_pro_tx_hash()).0)
            .to_bytes();
        let share_sig = share.sign(&hash.0).to_bytes();
        Some(self.sign(DkgBody::Premature {
            valid: valid.clone(),
            vvec: vvec.clone(),
            op_sig,
            share_sig,
        }))
    }

    /// The final commitment from `threshold` premature commitments that
    /// agree (with verified signatures), if there are that many.
    pub fn build_commitment(&self) -> Option<QuorumCommitment> {
        // Group by the commitment hash they sign.
        let mut groups: BTreeMap<Hash256, Vec<usize>> = BTreeMap::new();
        for (j, p) in self.prematures.iter().enumerate() {
            if let Some(DkgBody::Premature { valid, vvec, .. }) = p {
                let h = commitment_signing_hash(&self.quorum_hash, self.quorum_height, valid, vvec);
                groups.entry(h).or_default().push(j);
            }
        }
        let (hash, signers) = groups.into_iter().max_by_key(|(_, v)| v.len())?;
        if signers.len() < self.threshold {
            return None;
        }
        let Some(DkgBody::Premature { valid, vvec, .. }) = &self.prematures[signers[0]] else {
            return None;
        };
        let points = vvec
            .iter()
            .map(|p| bls::PublicKey::from_bytes(p))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let qvvec = VerificationVector::new(points).ok()?;
        let mut op_sigs = Vec::new();
        let mut shares = Vec::new();
        let mut signer_bits = BitSet::new(self.members.len());
        for &j in &signers {
            let Some(DkgBody::Premature {
                op_sig, share_sig, ..
            }) = &self.prematures[j]
            else {
                continue;
            };
            if !valid.get(j) {
                continue;
            }
            let (Ok(op), Ok(share)) = (
                bls::Signature::from_bytes(op_sig),
                bls::Signature::from_bytes(share_sig),
            ) else {
                continue;
            };
            let Ok(op_key) = bls::PublicKey::from_bytes(&self.members[j].1) else {
                continue;
            };
            let Ok(public_share) = qvvec.public_share(self.ids[j]) else {
                continue;
            };
            if !op.verify(
                &member_commitment_message(&hash, &self.members[j].0).0,
                &op_key,
            ) || !share.verify(&hash.0, &public_share)
            {
                continue;
            }
            signer_bits.set(j, true);
            op_sigs.push(op);
            shares.push((self.ids[j], share));
        }
        if shares.len() < self.threshold {
            return None;
        }
        let quorum_sig = bls::recover_signature(&shares, self.threshold).ok()?;
        if !quorum_sig.verify(&hash.0, &qvvec.public_key()) {
            return None;
        }
        let members_sig = bls::Signature::aggregate(&op_sigs).ok()?;
        Some(QuorumCommitment {
            quorum_hash: self.quorum_hash,
            quorum_height: self.quorum_height,
            signers: signer_bits,
            valid_members: valid.clone(),
            quorum_vvec: vvec.clone(),
            quorum_sig: quorum_sig.to_bytes(),
            members_sig: members_sig.to_bytes(),
        })
    }

    /// Our messages a member has not acknowledged yet.
    pub fn unacked(&self) -> Vec<(usize, DkgMessage)> {
        let mut out = Vec::new();
        for (phase, msg) in &self.own {
            for j in 0..self.members.len() {
                if j != self.my_index && !self.acked.contains(&(*phase, j)) {
                    out.push((j, msg.clone()));
                }
            }
        }
        out
    }

    pub fn mark_acked(&mut self, phase: u8, member: usize) {
        self.acked.insert((phase, member));
    }
}

#[cfg(test)]
mod tests {
    use rand::RngCore;
    use rusty_shared_types::Network;

    use super::*;

    struct Net {
        sessions: Vec<DkgSession>,
        params: &'static ChainParams,
    }

    fn setup(n: usize) -> Net {
        let params = Network::Dev.params();
        let mut rng = StdRng::seed_from_u64(7);
        let keys: Vec<bls::SecretKey> =
            (0..n).map(|_| bls::SecretKey::generate(&mut rng)).collect();
        let dkg = PendingDkg {
            quorum_hash: Hash256([5; 32]),
            quorum_height: 24,
            members: keys
                .iter()
                .enumerate()
                .map(|(i, k)| (Hash256([i as u8 + 1; 32]), k.public_key().to_bytes()))
                .collect(),
        };
        let sessions = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                DkgSession::new(params, &dkg, i, k, seed).unwrap()
            })
            .collect();
        Net { sessions, params }
    }

    /// Delivers messages among the `online` members until nothing moves.
    fn run(net: &mut Net, online: &[bool], height: u64) {
        deliver(net, online, height, |_, _| false);
    }

    #[test]
    fn all_members_agree_on_a_valid_commitment() {
        let mut net = setup(5);
        run(&mut net, &[true; 5], 24);
        let qc = net.sessions[0].commitment.clone().expect("finalized");
        assert_eq!(qc.valid_members.count(), 5);
        for s in &net.sessions {
            assert_eq!(s.phase(), Phase::Finalized);
            assert_eq!(
                s.commitment.as_ref().map(|c| c.signing_hash()),
                Some(qc.signing_hash())
            );
        }
        // Any threshold of key shares signs for the quorum key.
        let vvec = vvec_of(&qc);
        let msg = b"clsig";
        let shares: Vec<_> = net.sessions[2..]
            .iter()
            .map(|s| (s.ids[s.my_index], s.key_share().unwrap().sign(msg)))
            .collect();
        let sig = bls::recover_signature(&shares, net.params.masternode.quorum_threshold).unwrap();
        assert!(sig.verify(msg, &vvec.public_key()));
    }

    #[test]
    fn an_absent_member_is_excluded_after_the_deadlines() {
        let mut net = setup(5);
        let online = [true, true, true, true, false];
        run(&mut net, &online, 24);
        assert_eq!(net.sessions[0].phase(), Phase::Contribute);
        for h in [26, 28, 30, 32] {
            run(&mut net, &online, h);
        }
        let qc = net.sessions[0]
            .commitment
            .clone()
            .expect("finalized without member 4");
        assert_eq!(qc.valid_members.count(), 4);
        assert!(!qc.valid_members.get(4));
    }

    /// Member 4 never gets member 3's contribution before the justify phase
    /// ends (as after a kill between the contributions and the commitment):
    /// its own view excludes member 3, the others' commitment includes it.
    /// Once the contribution arrives late, member 4 adopts the majority's
    /// commitment, and its key share is the one that commitment implies.
    #[test]
    fn a_member_that_missed_a_contribution_gets_the_share_of_the_mined_quorum() {
        let mut net = setup(5);
        let late = net.sessions[3].advance(24);
        let late_contribution = late[0].clone();
        assert!(matches!(
            late_contribution.body,
            DkgBody::Contribution { .. }
        ));
        for (i, s) in net.sessions.iter_mut().enumerate() {
            if i != 3 && i != 4 {
                s.receive(&late_contribution).unwrap();
            }
        }
        for h in [24, 26, 28, 30] {
            run_dropping(&mut net, h, |msg, to| {
                to == 4 && msg.sender == late_contribution.sender && msg.body.phase() == 0
            });
        }
        let qc = net.sessions[0]
            .commitment
            .clone()
            .expect("the majority finalized");
        assert_eq!(qc.valid_members.count(), 5);
        let own_view = net.sessions[4]
            .valid_members()
            .cloned()
            .expect("member 4 has a result");
        assert!(!own_view.get(3), "member 4 judged member 3 invalid");
        assert!(
            net.sessions[4].key_share().is_none(),
            "no share while member 3's is missing"
        );

        net.sessions[4].receive(&late_contribution).unwrap();
        run(&mut net, &[true; 5], 32);
        let session = &net.sessions[4];
        assert_eq!(session.phase(), Phase::Finalized);
        let adopted = session
            .commitment
            .as_ref()
            .expect("member 4 built a commitment");
        assert_eq!(adopted.signing_hash(), qc.signing_hash());
        let vvec = vvec_of(&qc);
        let share = session.key_share().expect("a key share");
        assert!(vvec.verify_share(session.ids[4], &share));
        // The share of its own view would not have matched.
        let own = session.share_for(&own_view).expect("own view's share");
        assert!(!vvec.verify_share(session.ids[4], &own));
    }

    fn vvec_of(qc: &QuorumCommitment) -> VerificationVector {
        let points = qc
            .quorum_vvec
            .iter()
            .map(|p| bls::PublicKey::from_bytes(p).unwrap())
            .collect();
        VerificationVector::new(points).unwrap()
    }

    /// As `run` with everyone online, but `drop(msg, recipient)` messages
    /// are lost.
    fn run_dropping(net: &mut Net, height: u64, drop: impl Fn(&DkgMessage, usize) -> bool) {
        let online = vec![true; net.sessions.len()];
        deliver(net, &online, height, drop);
    }

    /// Advances the `online` members and delivers their messages to each
    /// other (except those `drop` loses) until nothing moves.
    fn deliver(
        net: &mut Net,
        online: &[bool],
        height: u64,
        drop: impl Fn(&DkgMessage, usize) -> bool,
    ) {
        loop {
            let mut outbox = Vec::new();
            for (i, s) in net.sessions.iter_mut().enumerate() {
                if online[i] {
                    outbox.extend(s.advance(height));
                }
            }
            if outbox.is_empty() {
                return;
            }
            for msg in outbox {
                for (i, s) in net.sessions.iter_mut().enumerate() {
                    if online[i] && !drop(&msg, i) {
                        let _ = s.receive(&msg);
                    }
                }
            }
        }
    }

    #[test]
    fn a_forged_message_is_refused() {
        let mut net = setup(3);
        let msgs = net.sessions[1].advance(24);
        let mut forged = msgs[0].clone();
        forged.sender = net.sessions[2].my_pro_tx_hash();
        assert_eq!(
            net.sessions[0].receive(&forged),
            Err(DkgError::BadSignature)
        );
        assert_eq!(net.sessions[0].receive(&msgs[0]), Ok(true));
        assert_eq!(net.sessions[0].receive(&msgs[0]), Err(DkgError::Duplicate));
    }
}
