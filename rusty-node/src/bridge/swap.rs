//! One swap's persisted state machine, for either role
//! (governance-crosschain.md B4; docs/bridge.md):
//!
//! - initiator: Offered → Accepted → Funding → Funded → PeerFunded →
//!   Redeeming → Completed, or after T1 Refunding → Refunded;
//! - participant: Accepted → PeerFunded → Funding → Funded → SecretSeen →
//!   Redeeming → Completed, or after T2 Refunding → Refunded.
//!
//! [`Swap::step`] looks at both chains through their [`ChainAdapter`]s and
//! moves as far as it can; it calls `persist` before every broadcast, so a
//! node killed at any point resumes from the record and the chains. The
//! chains decide: messages only tell where the other HTLC is. The
//! participant's redeem after the secret appears is the most urgent work
//! (its window closes at T1 on the other chain), so it is checked first.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    adapter::{AdapterError, ChainAdapter, HtlcFunding, HtlcRef, HtlcTerms, HtlcView},
    messages::{Asset, HashAlg, SwapBody},
};
use rusty_shared_types::Hash256;

/// Which side of the swap this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Knows the secret, locks first (until T1), redeems first.
    Initiator,
    /// Locks second (until T2 < T1), redeems with the secret the
    /// initiator's redeem reveals.
    Participant,
}

/// Where a swap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Offered,
    Accepted,
    /// Persisted before our HTLC is funded.
    Funding,
    /// Our HTLC is on chain.
    Funded,
    /// The other side's HTLC passed the audit and is final.
    PeerFunded,
    /// The participant saw the secret in the initiator's redeem.
    SecretSeen,
    /// Our redeem of the other side's HTLC is broadcast (retried until final).
    Redeeming,
    Completed,
    /// Our lock expired without a redeem; the refund is retried until final.
    Refunding,
    Refunded,
    /// Ended before anything of ours was locked (expired, refused, aborted).
    Aborted,
    /// Our redeem lost the race to the other side's refund (the node was
    /// away past the other lock).
    Failed,
}

impl State {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Completed | State::Refunded | State::Aborted | State::Failed
        )
    }

    /// The design's user-facing status (Initiated, Confirming, Processing,
    /// Completed, Failed).
    pub fn status(self) -> &'static str {
        match self {
            State::Offered | State::Accepted => "initiated",
            State::Funding | State::Funded => "confirming",
            State::PeerFunded | State::SecretSeen | State::Redeeming => "processing",
            State::Completed => "completed",
            State::Refunding | State::Refunded | State::Aborted | State::Failed => "failed",
        }
    }
}

/// A swap as persisted (`<datadir>/bridge/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    pub id: Hash256,
    pub role: Role,
    pub state: State,
    /// What the initiator gives (locked until T1 on its network).
    pub give_network: String,
    pub give_amount: u64,
    /// What the initiator wants (locked by the participant until T2).
    pub want_network: String,
    pub want_amount: u64,
    /// `blake3` or `sha256`.
    pub hash_alg: String,
    pub secret_hash: [u8; 32],
    /// Known to the initiator from the start, to the participant once the
    /// initiator's redeem reveals it. Saved before anything depends on it.
    pub secret: Option<[u8; 32]>,
    pub t1: u64,
    pub t2: u64,
    pub initiator_redeem: String,
    pub participant_redeem: Option<String>,
    pub offer_expiry: u64,
    /// Our refund address, chosen and saved before funding, so that the
    /// HTLC's script is known before it is paid.
    #[serde(default)]
    pub own_refund: Option<String>,
    /// Our HTLC and its refund, signed when funded.
    pub own: Option<HtlcFunding>,
    /// The other side's HTLC, as its `funded` message named it.
    pub peer: Option<HtlcRef>,
    pub redeem_txid: Option<String>,
    pub refund_txid: Option<String>,
    /// Every state entered, with the UNIX milliseconds it was entered at.
    pub history: Vec<(State, u64)>,
    /// The last thing that went wrong (cleared on progress).
    pub last_error: Option<String>,
}

/// Why an incoming message or offer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SwapRefused {
    #[error("not an offer")]
    NotAnOffer,
    #[error("the offer expired")]
    Expired,
    #[error("the message is for swap {0}, not this one")]
    OtherSwap(Hash256),
    #[error("a {0} message does not fit a swap in state {1:?}")]
    Unexpected(&'static str, State),
}

/// The least time the initiator's lock must outlast the participant's, as
/// a fraction of what is left of the participant's: 1.5 × (the offer
/// proposes 2 ×), so the participant always has half its own window to
/// redeem after the secret appears.
const MARGIN_NUM: u64 = 3;
const MARGIN_DEN: u64 = 2;

impl Swap {
    /// A new swap as initiator: `secret` is ours and saved with the record
    /// before anything is sent.
    #[allow(clippy::too_many_arguments)]
    pub fn initiate(
        give: Asset,
        want: Asset,
        hash_alg: HashAlg,
        secret: [u8; 32],
        (t1, t2): (u64, u64),
        initiator_redeem: String,
        offer_expiry: u64,
        now_ms: u64,
    ) -> Swap {
        let secret_hash = hash(hash_alg, &secret);
        let id = Hash256::domain_hash(
            rusty_shared_types::Domain::SwapMessage,
            &[&secret_hash[..], &now_ms.to_le_bytes()].concat(),
        );
        Swap {
            id,
            role: Role::Initiator,
            state: State::Offered,
            give_network: give.network,
            give_amount: give.amount,
            want_network: want.network,
            want_amount: want.amount,
            hash_alg: hash_alg.name().to_string(),
            secret_hash,
            secret: Some(secret),
            t1,
            t2,
            initiator_redeem,
            participant_redeem: None,
            offer_expiry,
            own_refund: None,
            own: None,
            peer: None,
            redeem_txid: None,
            refund_txid: None,
            history: vec![(State::Offered, now_ms)],
            last_error: None,
        }
    }

    /// The offer message of an initiator's swap.
    pub fn offer_body(&self) -> SwapBody {
        SwapBody::Offer {
            swap_id: self.id,
            give: Asset {
                network: self.give_network.clone(),
                amount: self.give_amount,
            },
            want: Asset {
                network: self.want_network.clone(),
                amount: self.want_amount,
            },
            hash_alg: self.alg(),
            secret_hash: self.secret_hash,
            t1: self.t1,
            t2: self.t2,
            initiator_redeem: self.initiator_redeem.clone(),
            offer_expiry: self.offer_expiry,
        }
    }

    /// Takes `offer` as participant, redeeming on the give chain at
    /// `participant_redeem`. Returns the swap and the accept message.
    pub fn accept(
        offer: &SwapBody,
        participant_redeem: String,
        now_ms: u64,
    ) -> Result<(Swap, SwapBody), SwapRefused> {
        let SwapBody::Offer {
            swap_id,
            give,
            want,
            hash_alg,
            secret_hash,
            t1,
            t2,
            initiator_redeem,
            offer_expiry,
        } = offer
        else {
            return Err(SwapRefused::NotAnOffer);
        };
        if now_ms / 1000 > *offer_expiry {
            return Err(SwapRefused::Expired);
        }
        let swap = Swap {
            id: *swap_id,
            role: Role::Participant,
            state: State::Accepted,
            give_network: give.network.clone(),
            give_amount: give.amount,
            want_network: want.network.clone(),
            want_amount: want.amount,
            hash_alg: hash_alg.name().to_string(),
            secret_hash: *secret_hash,
            secret: None,
            t1: *t1,
            t2: *t2,
            initiator_redeem: initiator_redeem.clone(),
            participant_redeem: Some(participant_redeem.clone()),
            offer_expiry: *offer_expiry,
            own_refund: None,
            own: None,
            peer: None,
            redeem_txid: None,
            refund_txid: None,
            history: vec![(State::Accepted, now_ms)],
            last_error: None,
        };
        let accept = SwapBody::Accept {
            swap_id: *swap_id,
            participant_redeem,
        };
        Ok((swap, accept))
    }

    fn alg(&self) -> HashAlg {
        if self.hash_alg == "sha256" {
            HashAlg::Sha256
        } else {
            HashAlg::Blake3
        }
    }

    /// Our lock: T1 for the initiator, T2 for the participant.
    pub fn own_lock(&self) -> u64 {
        match self.role {
            Role::Initiator => self.t1,
            Role::Participant => self.t2,
        }
    }

    /// The network our HTLC is on.
    pub fn own_network(&self) -> &str {
        match self.role {
            Role::Initiator => &self.give_network,
            Role::Participant => &self.want_network,
        }
    }

    /// The network the other side's HTLC is on.
    pub fn peer_network(&self) -> &str {
        match self.role {
            Role::Initiator => &self.want_network,
            Role::Participant => &self.give_network,
        }
    }

    /// The height (on the other side's chain) our redeem must be mined
    /// before: the other side may refund from then on.
    pub fn must_redeem_before(&self) -> u64 {
        match self.role {
            Role::Initiator => self.t2,
            Role::Participant => self.t1,
        }
    }

    /// Takes a message from the other side (already checked to be signed
    /// by it). Repeats change nothing. Returns whether the swap changed.
    pub fn on_message(&mut self, body: &SwapBody, now_ms: u64) -> Result<bool, SwapRefused> {
        if body.swap_id() != self.id {
            return Err(SwapRefused::OtherSwap(body.swap_id()));
        }
        match body {
            SwapBody::Accept {
                participant_redeem, ..
            } if self.role == Role::Initiator => {
                if self.state != State::Offered {
                    // A repeat of the accept we took, or a late one.
                    return Ok(false);
                }
                if now_ms / 1000 > self.offer_expiry {
                    return Err(SwapRefused::Expired);
                }
                self.participant_redeem = Some(participant_redeem.clone());
                self.enter(State::Accepted, now_ms);
                Ok(true)
            }
            SwapBody::Funded {
                network,
                txid,
                vout,
                ..
            } if *network == self.peer_network() => {
                let htlc = HtlcRef {
                    txid: txid.to_string(),
                    vout: *vout,
                };
                if self.peer.as_ref() == Some(&htlc) || self.state.is_terminal() {
                    return Ok(false);
                }
                // A hint: the audit decides whether it is any good, and a
                // later hint may replace one that failed it.
                self.peer = Some(htlc);
                Ok(true)
            }
            SwapBody::Abort { reason, .. } => {
                if matches!(self.state, State::Offered | State::Accepted) && self.own.is_none() {
                    self.last_error = Some(format!("the other side aborted: {reason}"));
                    self.enter(State::Aborted, now_ms);
                    return Ok(true);
                }
                Ok(false)
            }
            other => Err(SwapRefused::Unexpected(other.name(), self.state)),
        }
    }

    fn enter(&mut self, state: State, now_ms: u64) {
        if self.state != state {
            self.state = state;
            self.history.push((state, now_ms));
        }
        self.last_error = None;
    }

    /// Moves the swap as far as the chains allow; returns the messages to
    /// send the other side. `persist` must store the record durably; it is
    /// called before every broadcast and after every change.
    pub fn step(
        &mut self,
        own: &dyn ChainAdapter,
        peer: &dyn ChainAdapter,
        now_ms: u64,
        persist: &mut dyn FnMut(&Swap) -> Result<(), String>,
    ) -> Result<Vec<SwapBody>, StepError> {
        let mut out = Vec::new();
        // Each pass makes at most one transition; a swap has fewer than 12.
        for _ in 0..12 {
            let before = self.state;
            let result = self.advance(own, peer, now_ms, persist, &mut out);
            if let Err(StepError::Chain(e)) = &result {
                self.last_error = Some(e.to_string());
            }
            result?;
            if self.state == before {
                break;
            }
            persist(self).map_err(StepError::Persist)?;
        }
        Ok(out)
    }

    fn advance(
        &mut self,
        own: &dyn ChainAdapter,
        peer: &dyn ChainAdapter,
        now_ms: u64,
        persist: &mut dyn FnMut(&Swap) -> Result<(), String>,
        out: &mut Vec<SwapBody>,
    ) -> Result<(), StepError> {
        let save = |s: &Swap, persist: &mut dyn FnMut(&Swap) -> Result<(), String>| {
            persist(s).map_err(StepError::Persist)
        };
        match (self.role, self.state) {
            (_, s) if s.is_terminal() => {}
            (Role::Initiator, State::Offered) => {
                if now_ms / 1000 > self.offer_expiry {
                    self.last_error = Some("the offer expired unanswered".into());
                    self.enter(State::Aborted, now_ms);
                }
            }
            (Role::Initiator, State::Accepted) | (Role::Participant, State::PeerFunded) => {
                if self.own_refund.is_none() {
                    self.own_refund = Some(own.new_address()?);
                }
                self.enter(State::Funding, now_ms);
                save(self, persist)?;
                self.fund_own(own, now_ms, out)?;
            }
            (_, State::Funding) => {
                // Resumed between the record and the funding's answer: the
                // script is known, so the chain says whether it was paid.
                match own.find_funding(&self.own_terms())? {
                    Some(funding) => {
                        self.own = Some(funding);
                        self.enter(State::Funded, now_ms);
                        save(self, persist)?;
                        out.push(self.funded_body());
                    }
                    None => self.fund_own(own, now_ms, out)?,
                }
            }
            (Role::Initiator, State::Funded) => {
                if self.own_expired(own)? {
                    self.enter(State::Refunding, now_ms);
                } else if let Some(view) = self.audited_peer(own, peer)? {
                    if peer.is_final(&view) {
                        self.enter(State::PeerFunded, now_ms);
                    }
                } else {
                    // Until the participant funds, keep telling it where ours is.
                    out.push(self.funded_body());
                }
            }
            (Role::Participant, State::Accepted) => {
                if let Some(view) = self.audited_peer(own, peer)? {
                    if peer.is_final(&view) {
                        self.enter(State::PeerFunded, now_ms);
                    }
                } else if now_ms / 1000 > self.offer_expiry.saturating_add(3600) {
                    self.enter(State::Aborted, now_ms);
                    self.last_error = Some("the initiator never funded".into());
                }
            }
            (Role::Initiator, State::PeerFunded) => {
                self.enter(State::Redeeming, now_ms);
                save(self, persist)?;
                self.redeem_peer(peer)?;
            }
            (Role::Participant, State::Funded) => {
                let htlc = self.own_htlc();
                match own.find_spend(&htlc)? {
                    Some(spend) if spend.secret.is_some() => {
                        // The initiator redeemed ours: the secret is ours now.
                        self.secret = spend.secret;
                        self.enter(State::SecretSeen, now_ms);
                    }
                    Some(_) => self.enter(State::Refunding, now_ms),
                    None if self.own_expired(own)? => self.enter(State::Refunding, now_ms),
                    None => out.push(self.funded_body()),
                }
            }
            (Role::Participant, State::SecretSeen) => {
                self.enter(State::Redeeming, now_ms);
                save(self, persist)?;
                self.redeem_peer(peer)?;
            }
            (_, State::Redeeming) => {
                let Some(htlc) = self.peer.clone() else {
                    return Ok(());
                };
                match peer.find_spend(&htlc)? {
                    Some(spend) if spend.secret.is_some() => {
                        self.redeem_txid = Some(spend.txid.clone());
                        if peer.is_spend_final(&spend) {
                            self.enter(State::Completed, now_ms);
                        }
                    }
                    Some(_) => {
                        // The other side refunded first.
                        match self.role {
                            Role::Initiator => self.enter(State::Refunding, now_ms),
                            Role::Participant => {
                                self.enter(State::Failed, now_ms);
                                self.last_error = Some(
                                    "the initiator refunded before our redeem was mined".into(),
                                );
                            }
                        }
                    }
                    None => self.redeem_peer(peer)?,
                }
            }
            (_, State::Refunding) => {
                let htlc = self.own_htlc();
                match own.find_spend(&htlc)? {
                    Some(spend) if spend.secret.is_some() => {
                        // Redeemed by the other side after all: take theirs.
                        if self.secret.is_none() {
                            self.secret = spend.secret;
                        }
                        self.enter(State::SecretSeen, now_ms);
                        if self.role == Role::Initiator {
                            self.enter(State::Redeeming, now_ms);
                        }
                    }
                    Some(spend) => {
                        self.refund_txid = Some(spend.txid.clone());
                        if own.is_spend_final(&spend) {
                            self.enter(State::Refunded, now_ms);
                        }
                    }
                    None => {
                        save(self, persist)?;
                        self.refund_txid = Some(own.refund(&htlc)?);
                    }
                }
            }
            // Remaining pairs are not reachable for their role.
            (_, _) => {}
        }
        Ok(())
    }

    /// The terms of our HTLC.
    fn own_terms(&self) -> HtlcTerms {
        let recipient = match self.role {
            Role::Initiator => self.participant_redeem.clone().unwrap_or_default(),
            Role::Participant => self.initiator_redeem.clone(),
        };
        HtlcTerms {
            recipient,
            hash_alg: self.alg(),
            secret_hash: self.secret_hash,
            locktime: self.own_lock(),
            refund: self.own_refund.clone().unwrap_or_default(),
        }
    }

    /// Pays our HTLC (the record is in `Funding`, saved).
    fn fund_own(
        &mut self,
        own: &dyn ChainAdapter,
        now_ms: u64,
        out: &mut Vec<SwapBody>,
    ) -> Result<(), StepError> {
        let amount = match self.role {
            Role::Initiator => self.give_amount,
            Role::Participant => self.want_amount,
        };
        self.own = Some(own.fund(&self.own_terms(), amount)?);
        self.enter(State::Funded, now_ms);
        out.push(self.funded_body());
        Ok(())
    }

    fn own_htlc(&self) -> HtlcRef {
        self.own
            .as_ref()
            .map(|f| f.htlc.clone())
            .unwrap_or(HtlcRef {
                txid: String::new(),
                vout: 0,
            })
    }

    fn funded_body(&self) -> SwapBody {
        let own = self.own.as_ref();
        SwapBody::Funded {
            swap_id: self.id,
            network: self.own_network().to_string(),
            txid: own
                .and_then(|f| f.htlc.txid.parse().ok())
                .unwrap_or(Hash256::ZERO),
            vout: own.map_or(0, |f| f.htlc.vout),
            htlc_script: own
                .and_then(|f| hex::decode(&f.script).ok())
                .unwrap_or_default(),
            locktime: self.own_lock(),
        }
    }

    /// Whether our lock has expired (the refund is accepted now).
    fn own_expired(&self, own: &dyn ChainAdapter) -> Result<bool, StepError> {
        Ok(own.tip_height()? >= self.own_lock())
    }

    fn redeem_peer(&mut self, peer: &dyn ChainAdapter) -> Result<(), StepError> {
        let (Some(htlc), Some(secret)) = (self.peer.clone(), self.secret) else {
            return Ok(());
        };
        self.redeem_txid = Some(peer.redeem(&htlc, secret)?);
        Ok(())
    }

    /// The other side's HTLC if it passes the audit; `None` if there is
    /// none yet or it fails (the reason in `last_error`, nothing of ours
    /// locked on its account).
    fn audited_peer(
        &mut self,
        own: &dyn ChainAdapter,
        peer: &dyn ChainAdapter,
    ) -> Result<Option<HtlcView>, StepError> {
        let Some(htlc) = self.peer.clone() else {
            return Ok(None);
        };
        let Some(view) = peer.audit(&htlc)? else {
            self.last_error = Some(format!(
                "the other side's HTLC {}:{} is not on chain yet",
                htlc.txid, htlc.vout
            ));
            return Ok(None);
        };
        match self.audit_failure(&view, own, peer)? {
            None => Ok(Some(view)),
            Some(reason) => {
                self.last_error = Some(format!("refused the other side's HTLC: {reason}"));
                Ok(None)
            }
        }
    }

    /// What is wrong with the other side's HTLC, if anything.
    fn audit_failure(
        &self,
        view: &HtlcView,
        own: &dyn ChainAdapter,
        peer: &dyn ChainAdapter,
    ) -> Result<Option<String>, StepError> {
        let (amount, recipient, lock) = match self.role {
            Role::Initiator => (self.want_amount, self.initiator_redeem.clone(), self.t2),
            Role::Participant => (
                self.give_amount,
                self.participant_redeem.clone().unwrap_or_default(),
                self.t1,
            ),
        };
        if view.spent {
            return Ok(Some("already spent".into()));
        }
        if view.amount < amount {
            return Ok(Some(format!("locks {} instead of {amount}", view.amount)));
        }
        if view.hash_alg != self.alg() || view.secret_hash != self.secret_hash {
            return Ok(Some("a different secret hash".into()));
        }
        if view.recipient != recipient {
            return Ok(Some(format!(
                "pays {} instead of {recipient}",
                view.recipient
            )));
        }
        if view.locktime != lock {
            return Ok(Some(format!(
                "locked until {} instead of {lock}",
                view.locktime
            )));
        }
        if self.role == Role::Participant {
            // Our window to redeem after the secret appears is the time
            // between our lock and theirs; it must stay wide enough.
            let theirs = lock
                .saturating_sub(peer.tip_height()?)
                .saturating_mul(super::networks::spacing_secs(peer.network()));
            let ours = self
                .t2
                .saturating_sub(own.tip_height()?)
                .saturating_mul(super::networks::spacing_secs(own.network()));
            if theirs.saturating_mul(MARGIN_DEN) < ours.saturating_mul(MARGIN_NUM) || ours == 0 {
                return Ok(Some(format!(
                    "its lock leaves {theirs} s against our {ours} s: too short to redeem safely"
                )));
            }
        }
        Ok(None)
    }
}

/// Why a step stopped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StepError {
    #[error(transparent)]
    Chain(#[from] AdapterError),
    #[error("could not save the swap: {0}")]
    Persist(String),
}

/// The hash lock of `secret`.
pub fn hash(alg: HashAlg, secret: &[u8; 32]) -> [u8; 32] {
    let kind = match alg {
        HashAlg::Blake3 => rusty_vm::HashKind::Blake3,
        HashAlg::Sha256 => rusty_vm::HashKind::Sha256,
    };
    kind.hash(secret)
}
