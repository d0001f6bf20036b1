//! The swap state machine against two in-memory chains that keep HTLCs the
//! way the node's `htlc_*` methods do (a unit-test stand-in: the same
//! operations over real nodes are tested in `rusty-cli/tests/it/htlc_swap.rs`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::{
    adapter::{AdapterError, ChainAdapter, HtlcFunding, HtlcRef, HtlcSpend, HtlcTerms, HtlcView},
    messages::{Asset, HashAlg, SwapBody},
    swap::{hash, Role, State, Swap},
};

#[derive(Debug, Clone)]
struct MemHtlc {
    view: HtlcView,
    height: u64,
    /// (txid, height, secret of a redeem)
    spend: Option<(String, u64, Option<[u8; 32]>)>,
}

#[derive(Debug, Default)]
struct MemState {
    tip: u64,
    balances: HashMap<String, u64>,
    htlcs: Vec<MemHtlc>,
}

/// One party's wallet on an in-memory chain shared by both parties.
#[derive(Debug, Clone)]
struct MemWallet {
    network: &'static str,
    owner: &'static str,
    chain: Arc<Mutex<MemState>>,
}

impl MemWallet {
    fn address(&self) -> String {
        format!("{}{}", self.owner, self.network.replace('-', ""))
    }

    fn balance(&self) -> u64 {
        self.state()
            .balances
            .get(&self.address())
            .copied()
            .unwrap_or(0)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.chain.lock().expect("chain lock")
    }

    fn err(&self, m: &str) -> AdapterError {
        AdapterError::Call {
            network: self.network.into(),
            message: m.into(),
        }
    }

    fn htlc_index(&self, htlc: &HtlcRef) -> Result<usize, AdapterError> {
        htlc.txid
            .parse::<usize>()
            .ok()
            .filter(|i| *i < self.state().htlcs.len())
            .ok_or_else(|| self.err("no such output"))
    }

    fn spend(&self, htlc: &HtlcRef, secret: Option<[u8; 32]>) -> Result<String, AdapterError> {
        let i = self.htlc_index(htlc)?;
        let me = self.address();
        let mut s = self.state();
        let tip = s.tip;
        let h = &mut s.htlcs[i];
        if h.spend.is_some() {
            return Err(self.err("already spent"));
        }
        let (who, ok) = match secret {
            Some(secret) => (
                h.view.recipient.clone(),
                hash(h.view.hash_alg, &secret) == h.view.secret_hash,
            ),
            None => (h.view.refund.clone(), tip >= h.view.locktime),
        };
        if who != me || !ok {
            return Err(self.err("spend refused"));
        }
        let txid = format!("spend{i}");
        h.spend = Some((txid.clone(), tip + 1, secret));
        let amount = h.view.amount;
        *s.balances.entry(me).or_default() += amount;
        Ok(txid)
    }
}

fn confirmations(tip: u64, height: u64) -> u64 {
    if tip >= height {
        tip - height + 1
    } else {
        0
    }
}

impl ChainAdapter for MemWallet {
    fn network(&self) -> &str {
        self.network
    }

    fn final_depth(&self) -> u64 {
        2
    }

    fn tip_height(&self) -> Result<u64, AdapterError> {
        Ok(self.state().tip)
    }

    fn new_address(&self) -> Result<String, AdapterError> {
        Ok(self.address())
    }

    fn fund(&self, terms: &HtlcTerms, amount: u64) -> Result<HtlcFunding, AdapterError> {
        let HtlcTerms {
            recipient,
            hash_alg,
            secret_hash,
            locktime,
            refund,
        } = terms.clone();
        let me = self.address();
        if refund != me {
            return Err(self.err("the refund address is not ours"));
        }
        let mut s = self.state();
        let balance = s.balances.entry(me.clone()).or_default();
        if *balance < amount {
            return Err(self.err("insufficient funds"));
        }
        *balance -= amount;
        let tip = s.tip;
        s.htlcs.push(MemHtlc {
            view: HtlcView {
                amount,
                hash_alg,
                secret_hash,
                recipient,
                refund,
                locktime,
                confirmations: 0,
                chainlocked: false,
                spent: false,
            },
            height: tip + 1,
            spend: None,
        });
        let txid = (s.htlcs.len() - 1).to_string();
        Ok(HtlcFunding {
            htlc: HtlcRef {
                txid: txid.clone(),
                vout: 0,
            },
            script: String::new(),
            refund_tx: String::new(),
            refund_txid: format!("refund{txid}"),
        })
    }

    fn find_funding(&self, terms: &HtlcTerms) -> Result<Option<HtlcFunding>, AdapterError> {
        let s = self.state();
        Ok(s.htlcs
            .iter()
            .position(|h| {
                h.view.recipient == terms.recipient
                    && h.view.secret_hash == terms.secret_hash
                    && h.view.locktime == terms.locktime
                    && h.view.refund == terms.refund
            })
            .map(|i| HtlcFunding {
                htlc: HtlcRef {
                    txid: i.to_string(),
                    vout: 0,
                },
                script: String::new(),
                refund_tx: String::new(),
                refund_txid: format!("refund{i}"),
            }))
    }

    fn audit(&self, htlc: &HtlcRef) -> Result<Option<HtlcView>, AdapterError> {
        let Ok(i) = self.htlc_index(htlc) else {
            return Ok(None);
        };
        let s = self.state();
        let h = &s.htlcs[i];
        Ok(Some(HtlcView {
            confirmations: confirmations(s.tip, h.height),
            spent: h.spend.is_some(),
            ..h.view.clone()
        }))
    }

    fn find_spend(&self, htlc: &HtlcRef) -> Result<Option<HtlcSpend>, AdapterError> {
        let i = self.htlc_index(htlc)?;
        let s = self.state();
        Ok(s.htlcs[i]
            .spend
            .as_ref()
            .map(|(txid, height, secret)| HtlcSpend {
                txid: txid.clone(),
                confirmations: confirmations(s.tip, *height),
                secret: *secret,
                chainlocked: false,
            }))
    }

    fn redeem(&self, htlc: &HtlcRef, secret: [u8; 32]) -> Result<String, AdapterError> {
        self.spend(htlc, Some(secret))
    }

    fn refund(&self, htlc: &HtlcRef) -> Result<String, AdapterError> {
        self.spend(htlc, None)
    }
}

const NOW: u64 = 1_800_000_000_000;
const SECRET: [u8; 32] = [0x5a; 32];

/// Two chains, each with a wallet of each party; Alice holds 100 RSC, Bob
/// 100 PAR.
struct World {
    rsc: Arc<Mutex<MemState>>,
    par: Arc<Mutex<MemState>>,
}

impl World {
    fn new() -> World {
        let w = World {
            rsc: Arc::default(),
            par: Arc::default(),
        };
        let alice = w.wallet("dev", "alice");
        w.rsc
            .lock()
            .expect("lock")
            .balances
            .insert(alice.address(), 100);
        let bob = w.wallet("par-dev", "bob");
        w.par
            .lock()
            .expect("lock")
            .balances
            .insert(bob.address(), 100);
        w
    }

    fn wallet(&self, network: &'static str, owner: &'static str) -> MemWallet {
        let chain = if network == "dev" {
            &self.rsc
        } else {
            &self.par
        };
        MemWallet {
            network,
            owner,
            chain: chain.clone(),
        }
    }

    fn mine(&self) {
        self.rsc.lock().expect("lock").tip += 1;
        self.par.lock().expect("lock").tip += 1;
    }
}

/// A party: its swap, its two wallets (own chain first) and the record it
/// last persisted, which a "restart" reloads.
struct Party {
    swap: Swap,
    own: MemWallet,
    peer: MemWallet,
    saved: String,
    saves: usize,
}

impl Party {
    fn new(swap: Swap, own: MemWallet, peer: MemWallet) -> Party {
        let saved = serde_json::to_string(&swap).expect("json");
        Party {
            swap,
            own,
            peer,
            saved,
            saves: 0,
        }
    }

    fn step(&mut self, now: u64) -> Vec<SwapBody> {
        let mut saved = None;
        let mut saves = 0;
        let out = {
            let mut persist = |s: &Swap| {
                saved = Some(serde_json::to_string(s).map_err(|e| e.to_string())?);
                saves += 1;
                Ok(())
            };
            self.swap.step(&self.own, &self.peer, now, &mut persist)
        };
        if let Some(s) = saved {
            self.saved = s;
        }
        self.saves += saves;
        // Chain errors are retried at the next step; the test looks at the
        // outcome.
        out.unwrap_or_default()
    }

    /// `kill -9` and start again: only what was persisted survives.
    fn restart(&mut self) {
        self.swap = serde_json::from_str(&self.saved).expect("saved swap");
    }

    /// Takes the other side's messages, persisting what changed (as the
    /// bridge service does).
    fn deliver(&mut self, msgs: &[SwapBody], now: u64) {
        for m in msgs {
            if self.swap.on_message(m, now) == Ok(true) {
                self.saved = serde_json::to_string(&self.swap).expect("json");
            }
        }
    }
}

/// Alice offers 5 RSC for 10 PAR; Bob accepts.
fn start(w: &World, tweak: impl FnOnce(&mut Swap)) -> (Party, Party) {
    start_with_locks(w, (40, 20), tweak)
}

/// As [`start`], with the offer's locks (T1 on RSC, T2 on PAR).
fn start_with_locks(w: &World, locks: (u64, u64), tweak: impl FnOnce(&mut Swap)) -> (Party, Party) {
    let alice_par = w.wallet("par-dev", "alice");
    let mut offer = Swap::initiate(
        Asset {
            network: "dev".into(),
            amount: 5,
        },
        Asset {
            network: "par-dev".into(),
            amount: 10,
        },
        HashAlg::Blake3,
        SECRET,
        locks,
        alice_par.address(),
        NOW / 1000 + 600,
        NOW,
    );
    let bob_rsc = w.wallet("dev", "bob");
    let (bob_swap, accept) =
        Swap::accept(&offer.offer_body(), bob_rsc.address(), NOW).expect("accept");
    assert!(offer.on_message(&accept, NOW).expect("accept taken"));
    tweak(&mut offer);
    let alice = Party::new(offer, w.wallet("dev", "alice"), alice_par);
    let bob = Party::new(bob_swap, w.wallet("par-dev", "bob"), bob_rsc);
    (alice, bob)
}

/// Steps both parties (those `active`) and mines a block on each chain,
/// `rounds` times or until both are done.
fn run(w: &World, alice: &mut Party, bob: &mut Party, rounds: usize, active: (bool, bool)) {
    for r in 0..rounds {
        let now = NOW + r as u64 * 1000;
        if active.0 {
            let m = alice.step(now);
            bob.deliver(&m, now);
        }
        if active.1 {
            let m = bob.step(now);
            alice.deliver(&m, now);
        }
        if alice.swap.state.is_terminal() && bob.swap.state.is_terminal() {
            return;
        }
        w.mine();
    }
}

/// Runs both parties until Bob's HTLC is funded.
fn until_bob_funded(w: &World, alice: &mut Party, bob: &mut Party) {
    for _ in 0..30 {
        run(w, alice, bob, 1, (true, true));
        if bob.swap.state == State::Funded {
            return;
        }
    }
}

#[test]
fn happy_path_completes_on_both_chains_with_balances_conserved() {
    let w = World::new();
    let (mut alice, mut bob) = start(&w, |_| {});
    run(&w, &mut alice, &mut bob, 60, (true, true));
    assert_eq!(alice.swap.state, State::Completed, "{:?}", alice.swap);
    assert_eq!(bob.swap.state, State::Completed, "{:?}", bob.swap);
    assert_eq!(w.wallet("dev", "alice").balance(), 95);
    assert_eq!(w.wallet("dev", "bob").balance(), 5);
    assert_eq!(w.wallet("par-dev", "alice").balance(), 10);
    assert_eq!(w.wallet("par-dev", "bob").balance(), 90);
    // Every state of each role's happy path, in order.
    let states = |p: &Party| p.swap.history.iter().map(|h| h.0).collect::<Vec<_>>();
    use State::*;
    assert_eq!(
        states(&alice),
        [Offered, Accepted, Funding, Funded, PeerFunded, Redeeming, Completed]
    );
    assert_eq!(
        states(&bob),
        [Accepted, PeerFunded, Funding, Funded, SecretSeen, Redeeming, Completed]
    );
    assert_eq!(bob.swap.secret, Some(SECRET));
    assert!(alice.saves > 0 && bob.saves > 0);
}

#[test]
fn a_restart_at_every_step_resumes_to_the_same_end() {
    let w = World::new();
    let (mut alice, mut bob) = start(&w, |_| {});
    for r in 0..80 {
        let now = NOW + r * 1000;
        alice.restart();
        bob.restart();
        let m = alice.step(now);
        bob.deliver(&m, now);
        let m = bob.step(now);
        alice.deliver(&m, now);
        if alice.swap.state.is_terminal() && bob.swap.state.is_terminal() {
            break;
        }
        w.mine();
    }
    assert_eq!(alice.swap.state, State::Completed);
    assert_eq!(bob.swap.state, State::Completed);
    assert_eq!(w.wallet("dev", "bob").balance(), 5);
    assert_eq!(w.wallet("par-dev", "alice").balance(), 10);
}

#[test]
fn the_participant_refunds_by_itself_when_the_initiator_vanishes() {
    let w = World::new();
    let (mut alice, mut bob) = start(&w, |_| {});
    // Until Bob has funded, both run; then Alice's node is gone for good.
    until_bob_funded(&w, &mut alice, &mut bob);
    assert_eq!(bob.swap.state, State::Funded);
    assert_eq!(w.wallet("par-dev", "bob").balance(), 90);
    run(&w, &mut alice, &mut bob, 60, (false, true));
    assert_eq!(bob.swap.state, State::Refunded, "{:?}", bob.swap);
    assert_eq!(w.wallet("par-dev", "bob").balance(), 100);
    // Not before T2: the refund was mined above the lock.
    let refunded_at = w.par.lock().expect("lock").htlcs[0]
        .spend
        .clone()
        .expect("spent")
        .1;
    assert!(refunded_at > 20);
    // Alice, back later, refunds hers at T1.
    alice.restart();
    run(&w, &mut alice, &mut bob, 60, (true, false));
    assert_eq!(alice.swap.state, State::Refunded, "{:?}", alice.swap);
    assert_eq!(w.wallet("dev", "alice").balance(), 100);
}

#[test]
fn a_participant_killed_after_the_initiator_redeems_redeems_after_restart() {
    let w = World::new();
    let (mut alice, mut bob) = start(&w, |_| {});
    until_bob_funded(&w, &mut alice, &mut bob);
    // Bob is killed; Alice redeems his PAR and so reveals the secret.
    run(&w, &mut alice, &mut bob, 10, (true, false));
    assert_eq!(alice.swap.state, State::Completed);
    assert_eq!(bob.swap.secret, None);
    // Bob comes back before T1 with only his record: he finds the secret on
    // PAR and redeems Alice's RSC.
    bob.restart();
    assert!(w.rsc.lock().expect("lock").tip < 40);
    run(&w, &mut alice, &mut bob, 20, (false, true));
    assert_eq!(bob.swap.state, State::Completed, "{:?}", bob.swap);
    assert_eq!(w.wallet("dev", "bob").balance(), 5);
}

#[test]
fn the_audit_refuses_a_wrong_amount_hash_or_lock_and_locks_nothing() {
    type Case = (&'static str, (u64, u64), fn(&mut Swap));
    let cases: [Case; 5] = [
        ("locks 4 instead of 5", (40, 20), |s| s.give_amount = 4),
        ("a different secret hash", (40, 20), |s| {
            s.secret_hash = [1; 32]
        }),
        ("locked until 30 instead of 40", (40, 20), |s| s.t1 = 30),
        ("pays mallory", (40, 20), |s| {
            s.participant_redeem = Some("mallory".into())
        }),
        // Agreed in the offer, but 11 RSC blocks (22 s) against 19 PAR
        // blocks (19 s) leave Bob too little time to redeem after Alice.
        ("too short to redeem safely", (12, 20), |_| {}),
    ];
    for (why, locks, tweak) in cases {
        let w = World::new();
        let (mut alice, mut bob) = start_with_locks(&w, locks, tweak);
        run(&w, &mut alice, &mut bob, 8, (true, true));
        assert_eq!(bob.swap.state, State::Accepted, "{why}: {:?}", bob.swap);
        let err = bob.swap.last_error.clone().unwrap_or_default();
        assert!(err.contains(why), "{why}: {err}");
        assert!(bob.swap.own.is_none());
        assert_eq!(w.wallet("par-dev", "bob").balance(), 100, "{why}");
        assert!(w.par.lock().expect("lock").htlcs.is_empty());
    }
}

#[test]
fn replayed_or_misdirected_messages_change_nothing() {
    let w = World::new();
    let (mut alice, mut bob) = start(&w, |_| {});
    run(&w, &mut alice, &mut bob, 3, (true, true));
    let before = alice.swap.clone();
    let accept = SwapBody::Accept {
        swap_id: alice.swap.id,
        participant_redeem: "mallory".into(),
    };
    assert_eq!(alice.swap.on_message(&accept, NOW), Ok(false));
    let other = SwapBody::Abort {
        swap_id: rusty_shared_types::Hash256([9; 32]),
        reason: "x".into(),
    };
    assert!(alice.swap.on_message(&other, NOW).is_err());
    // An abort once our HTLC is funded cannot undo it.
    let abort = SwapBody::Abort {
        swap_id: alice.swap.id,
        reason: "changed my mind".into(),
    };
    assert_eq!(alice.swap.on_message(&abort, NOW), Ok(false));
    // A second offer is no message for a running swap.
    assert!(alice.swap.on_message(&before.offer_body(), NOW).is_err());
    assert_eq!(alice.swap, before);
    assert_eq!(alice.swap.role, Role::Initiator);
}

#[test]
fn a_crash_after_paying_but_before_saving_the_htlc_never_pays_twice() {
    let w = World::new();
    let (mut alice, mut bob) = start(&w, |_| {});
    // Alice's step pays her HTLC; the node dies right after saving
    // `Funding`, before the funding's answer reached the record.
    let mut funding_record = None;
    {
        let mut persist = |s: &Swap| {
            if s.state == State::Funding {
                funding_record = Some(serde_json::to_string(s).map_err(|e| e.to_string())?);
            }
            Ok(())
        };
        let own = alice.own.clone();
        let peer = alice.peer.clone();
        alice
            .swap
            .step(&own, &peer, NOW, &mut persist)
            .expect("step");
    }
    assert_eq!(w.rsc.lock().expect("lock").htlcs.len(), 1);
    alice.saved = funding_record.expect("a Funding record was saved");
    alice.restart();
    assert_eq!(alice.swap.state, State::Funding);
    assert!(alice.swap.own.is_none());
    // Resumed, it finds the HTLC it paid instead of paying again.
    run(&w, &mut alice, &mut bob, 60, (true, true));
    assert_eq!(w.rsc.lock().expect("lock").htlcs.len(), 1, "paid twice");
    assert_eq!(alice.swap.state, State::Completed, "{:?}", alice.swap);
    assert_eq!(bob.swap.state, State::Completed);
    assert_eq!(w.wallet("dev", "alice").balance(), 95);
}
