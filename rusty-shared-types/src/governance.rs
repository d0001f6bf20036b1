//! Governance payloads: proposals and masternode votes as typed special
//! transactions, so the tally is a function of the chain alone (no gossip
//! objects, no triggers, no wall clock).
//!
//! - Tag 9, [`Proposal`]: a treasury payment or a bounded parameter change,
//!   with its title, URL and the BLAKE3 hash of its document. The
//!   transaction burns the proposal fee (inputs exceed outputs by at least
//!   the fee): there is no prepare/submit two-step.
//! - Tag 10, [`VoteBatch`]: one masternode's votes on one or more
//!   proposals, signed with the masternode's voting key (Ed25519), never the
//!   operator key. A vote transaction has no inputs and no outputs and pays
//!   no fee; the rate is bounded by consensus (one vote per masternode and
//!   proposal per block, a cooldown before a change), and replays are
//!   bounded by `made_at` (a vote is valid only in the blocks just after the
//!   height it names, and the signature covers it).
//!
//! Every decoder bounds its lengths before allocating; the encodings are
//! canonical (one byte string per value), so a hash names one proposal.

use crate::{
    encoding::{write_bytes, Decode, DecodeError, DecodeResult, Encode, Reader},
    masternode::Ed25519SignatureBytes,
    Hash256, Script,
};

/// Longest proposal title, in bytes of UTF-8.
pub const MAX_TITLE_LEN: usize = 64;
/// Longest proposal URL, in bytes of UTF-8.
pub const MAX_URL_LEN: usize = 128;
/// Most superblocks one payment proposal may be paid at.
pub const MAX_PAYMENT_SUPERBLOCKS: u16 = 12;
/// Most proposals one vote transaction may vote on.
pub const MAX_VOTES_PER_TX: usize = 64;
/// Longest payee script of a payment proposal.
pub const MAX_PAYEE_SCRIPT_LEN: usize = 128;

/// What a proposal asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalKind {
    /// Pay `amount` base units to `payee` at each of the proposal's
    /// superblocks while it keeps passing.
    TreasuryPayment { payee: Script, amount: u64 },
    /// Set a governable parameter from the superblock after the one it
    /// passes at.
    ParamChange(ParamChange),
}

/// A new value for one governable parameter. The bounds and the largest
/// step are consensus rules (`rusty_core::governance::bounds`); a change
/// outside them makes the transaction invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamChange {
    /// The block reward split in basis points: miner, masternodes,
    /// treasury; they sum to 10,000.
    RewardSplit {
        miner_bp: u16,
        masternode_bp: u16,
        treasury_bp: u16,
    },
    /// The largest block, in bytes.
    MaxBlockSize(u64),
    /// The default minimum relay fee rate (base units per 1000 bytes): a
    /// policy default a node operator may still override.
    MinRelayFee(u64),
}

impl ParamChange {
    /// The parameter's name, as `gov submit --param` and the RPC take it.
    pub fn name(&self) -> &'static str {
        match self {
            ParamChange::RewardSplit { .. } => "reward-split",
            ParamChange::MaxBlockSize(_) => "max-block-size",
            ParamChange::MinRelayFee(_) => "min-relay-fee",
        }
    }
}

/// Tag 9: a governance proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// UTF-8, at most [`MAX_TITLE_LEN`] bytes, not empty.
    pub title: String,
    /// UTF-8, at most [`MAX_URL_LEN`] bytes.
    pub url: String,
    /// BLAKE3 of the proposal's document (what the URL serves).
    pub doc_hash: Hash256,
    /// Height of the first superblock the proposal is voted for.
    pub first_superblock: u64,
    /// How many superblocks from the first (1 for a parameter change; at
    /// most [`MAX_PAYMENT_SUPERBLOCKS`] for a payment).
    pub superblocks: u16,
    pub kind: ProposalKind,
}

/// A masternode's choice on one proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteOutcome {
    Yes,
    No,
    Abstain,
}

impl VoteOutcome {
    pub fn tag(self) -> u8 {
        match self {
            VoteOutcome::Yes => 1,
            VoteOutcome::No => 2,
            VoteOutcome::Abstain => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VoteOutcome::Yes => "yes",
            VoteOutcome::No => "no",
            VoteOutcome::Abstain => "abstain",
        }
    }
}

impl std::str::FromStr for VoteOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "yes" => Ok(VoteOutcome::Yes),
            "no" => Ok(VoteOutcome::No),
            "abstain" => Ok(VoteOutcome::Abstain),
            other => Err(format!("'{other}' is not a vote: yes, no or abstain")),
        }
    }
}

/// Tag 10: one masternode's votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteBatch {
    /// The voting masternode's registration.
    pub pro_tx_hash: Hash256,
    /// The height the votes were made at; they are valid only in the blocks
    /// of a short window after it, so an old signed vote cannot be
    /// replayed to undo a newer one.
    pub made_at: u64,
    /// (proposal txid, outcome), at most [`MAX_VOTES_PER_TX`], each
    /// proposal once, in ascending proposal order (one encoding).
    pub votes: Vec<(Hash256, VoteOutcome)>,
    /// Ed25519 signature of [`VoteBatch::signing_hash`] by the
    /// masternode's voting key.
    pub signature: Ed25519SignatureBytes,
}

impl VoteBatch {
    /// The encoding without the signature.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        self.pro_tx_hash.encode_to(out);
        self.made_at.encode_to(out);
        crate::encoding::write_compact_size(out, self.votes.len() as u64);
        for (proposal, outcome) in &self.votes {
            proposal.encode_to(out);
            out.push(outcome.tag());
        }
    }

    /// What the voting key signs: the unsigned encoding under its own
    /// domain and the chain's name, so a vote is valid on one chain only.
    pub fn signing_hash(&self, chain: &str) -> Hash256 {
        let mut unsigned = Vec::new();
        self.encode_unsigned(&mut unsigned);
        let mut h = blake3::Hasher::new_derive_key("rusty-coin governance vote v1");
        h.update(&(chain.len() as u64).to_le_bytes());
        h.update(chain.as_bytes());
        h.update(&unsigned);
        Hash256(*h.finalize().as_bytes())
    }
}

/// A string field: length-prefixed UTF-8 of at most `max` bytes; `what`
/// names it in the error.
fn read_text(r: &mut Reader<'_>, what: &'static str, max: usize) -> DecodeResult<String> {
    let bytes = r.bytes(what, max)?;
    String::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue(what))
}

impl Encode for ParamChange {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match *self {
            ParamChange::RewardSplit {
                miner_bp,
                masternode_bp,
                treasury_bp,
            } => {
                out.push(1);
                miner_bp.encode_to(out);
                masternode_bp.encode_to(out);
                treasury_bp.encode_to(out);
            }
            ParamChange::MaxBlockSize(v) => {
                out.push(2);
                v.encode_to(out);
            }
            ParamChange::MinRelayFee(v) => {
                out.push(3);
                v.encode_to(out);
            }
        }
    }
}

impl Decode for ParamChange {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        match r.u8()? {
            1 => Ok(ParamChange::RewardSplit {
                miner_bp: r.u16()?,
                masternode_bp: r.u16()?,
                treasury_bp: r.u16()?,
            }),
            2 => Ok(ParamChange::MaxBlockSize(r.u64()?)),
            3 => Ok(ParamChange::MinRelayFee(r.u64()?)),
            t => Err(DecodeError::InvalidTag {
                what: "governance parameter",
                tag: u64::from(t),
            }),
        }
    }
}

impl Encode for Proposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.title.as_bytes());
        write_bytes(out, self.url.as_bytes());
        self.doc_hash.encode_to(out);
        self.first_superblock.encode_to(out);
        self.superblocks.encode_to(out);
        match &self.kind {
            ProposalKind::TreasuryPayment { payee, amount } => {
                out.push(1);
                write_bytes(out, payee.as_bytes());
                amount.encode_to(out);
            }
            ProposalKind::ParamChange(p) => {
                out.push(2);
                p.encode_to(out);
            }
        }
    }
}

impl Decode for Proposal {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let title = read_text(r, "proposal title", MAX_TITLE_LEN)?;
        let url = read_text(r, "proposal url", MAX_URL_LEN)?;
        let doc_hash = Hash256::decode_from(r)?;
        let first_superblock = r.u64()?;
        let superblocks = r.u16()?;
        let kind = match r.u8()? {
            1 => ProposalKind::TreasuryPayment {
                payee: Script::new(r.bytes("proposal payee", MAX_PAYEE_SCRIPT_LEN)?),
                amount: r.u64()?,
            },
            2 => ProposalKind::ParamChange(ParamChange::decode_from(r)?),
            t => {
                return Err(DecodeError::InvalidTag {
                    what: "proposal kind",
                    tag: u64::from(t),
                })
            }
        };
        Ok(Proposal {
            title,
            url,
            doc_hash,
            first_superblock,
            superblocks,
            kind,
        })
    }
}

impl Encode for VoteBatch {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        self.signature.encode_to(out);
    }
}

impl Decode for VoteBatch {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let pro_tx_hash = Hash256::decode_from(r)?;
        let made_at = r.u64()?;
        // 33 bytes per vote: a hash and an outcome.
        let n = r.length("votes", MAX_VOTES_PER_TX, 33)?;
        let mut votes: Vec<(Hash256, VoteOutcome)> = Vec::with_capacity(n);
        for _ in 0..n {
            let proposal = Hash256::decode_from(r)?;
            let outcome = match r.u8()? {
                1 => VoteOutcome::Yes,
                2 => VoteOutcome::No,
                3 => VoteOutcome::Abstain,
                t => {
                    return Err(DecodeError::InvalidTag {
                        what: "vote outcome",
                        tag: u64::from(t),
                    })
                }
            };
            // Ascending, each proposal once: one encoding per vote set.
            if votes.last().is_some_and(|(last, _)| *last >= proposal) {
                return Err(DecodeError::InvalidValue(
                    "votes (proposals must ascend, each once)",
                ));
            }
            votes.push((proposal, outcome));
        }
        if votes.is_empty() {
            return Err(DecodeError::InvalidValue("votes (none)"));
        }
        Ok(VoteBatch {
            pro_tx_hash,
            made_at,
            votes,
            signature: r.array()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{decode_exact, Payload};

    fn vote(votes: Vec<(Hash256, VoteOutcome)>) -> VoteBatch {
        VoteBatch {
            pro_tx_hash: Hash256([7; 32]),
            made_at: 100,
            votes,
            signature: [9; 64],
        }
    }

    fn proposal() -> Proposal {
        Proposal {
            title: "Fund the explorer".into(),
            url: "https://example.org/explorer".into(),
            doc_hash: Hash256([1; 32]),
            first_superblock: 48,
            superblocks: 3,
            kind: ProposalKind::TreasuryPayment {
                payee: Script::new(vec![0x76, 0xa9]),
                amount: 5_000_000_000,
            },
        }
    }

    #[test]
    fn payloads_round_trip_under_their_tags() {
        let p = Payload::Proposal(proposal());
        let bytes = p.encode();
        assert_eq!(bytes[0], 9);
        assert_eq!(decode_exact::<Payload>(&bytes).expect("decodes"), p);
        let v = Payload::Vote(vote(vec![
            (Hash256([1; 32]), VoteOutcome::Yes),
            (Hash256([2; 32]), VoteOutcome::Abstain),
        ]));
        let bytes = v.encode();
        assert_eq!(bytes[0], 10);
        assert_eq!(decode_exact::<Payload>(&bytes).expect("decodes"), v);
    }

    #[test]
    fn votes_have_one_encoding() {
        let unordered = vote(vec![
            (Hash256([2; 32]), VoteOutcome::Yes),
            (Hash256([1; 32]), VoteOutcome::No),
        ]);
        assert!(decode_exact::<VoteBatch>(&unordered.encode()).is_err());
        let twice = vote(vec![
            (Hash256([1; 32]), VoteOutcome::Yes),
            (Hash256([1; 32]), VoteOutcome::No),
        ]);
        assert!(decode_exact::<VoteBatch>(&twice.encode()).is_err());
        assert!(decode_exact::<VoteBatch>(&vote(Vec::new()).encode()).is_err());
        let mut bad_outcome = vote(vec![(Hash256([1; 32]), VoteOutcome::Yes)]).encode();
        // pro_tx_hash 32, made_at 8, count 1, proposal 32: the outcome.
        bad_outcome[73] = 4;
        assert!(matches!(
            decode_exact::<VoteBatch>(&bad_outcome),
            Err(DecodeError::InvalidTag {
                what: "vote outcome",
                tag: 4
            })
        ));
    }

    #[test]
    fn proposals_bound_their_text() {
        let mut long = proposal();
        long.title = "x".repeat(MAX_TITLE_LEN + 1);
        assert!(matches!(
            decode_exact::<Proposal>(&long.encode()),
            Err(DecodeError::TooLong {
                what: "proposal title",
                ..
            })
        ));
        let mut bytes = proposal().encode();
        // The title's first byte: not UTF-8 on its own.
        bytes[1] = 0xff;
        assert_eq!(
            decode_exact::<Proposal>(&bytes),
            Err(DecodeError::InvalidValue("proposal title"))
        );
    }

    #[test]
    fn a_vote_signs_its_chain_and_content() {
        let v = vote(vec![(Hash256([1; 32]), VoteOutcome::Yes)]);
        assert_ne!(v.signing_hash("dev"), v.signing_hash("main"));
        let mut later = v.clone();
        later.made_at += 1;
        assert_ne!(v.signing_hash("dev"), later.signing_hash("dev"));
        let mut other = v.clone();
        other.signature = [0; 64];
        assert_eq!(v.signing_hash("dev"), other.signing_hash("dev"));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_exact::<Proposal>(&bytes);
            let _ = decode_exact::<VoteBatch>(&bytes);
        }

        #[test]
        fn proposals_round_trip(p in crate::arbitrary::proposal()) {
            prop_assert_eq!(decode_exact::<Proposal>(&p.encode()).expect("decodes"), p);
        }

        #[test]
        fn votes_round_trip(v in crate::arbitrary::vote_batch()) {
            prop_assert_eq!(decode_exact::<VoteBatch>(&v.encode()).expect("decodes"), v);
        }
    }
}
