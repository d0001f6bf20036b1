//! The canonical encodings of the masternode state (the `mn_state` meta
//! record written with every flush) and of its undo records (the
//! `mn_undo` table). Decoders read untrusted disk bytes: every length is
//! bounded before allocating.

#![deny(clippy::arithmetic_side_effects)]

use rusty_shared_types::{
    encoding::{write_bytes, write_option, write_vec, DecodeResult, Reader},
    masternode::BlsPublicKeyBytes,
    Decode, Encode, Hash256, Script,
};

use super::*;

impl Encode for MasternodeEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.pro_tx_hash.encode_to(out);
        self.collateral.encode_to(out);
        self.owner_key.encode_to(out);
        self.operator_key.encode_to(out);
        self.voting_key.encode_to(out);
        write_bytes(out, self.payout.as_bytes());
        self.operator_reward_bps.encode_to(out);
        match &self.operator_payout {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                write_bytes(out, s.as_bytes());
            }
        }
        write_bytes(out, self.service.as_bytes());
        self.registered_height.encode_to(out);
        self.last_paid_height.encode_to(out);
        self.pose_penalty.encode_to(out);
        write_option(out, &self.pose_ban_height);
        self.revoked.encode_to(out);
    }
}

fn read_script(r: &mut Reader<'_>) -> DecodeResult<Script> {
    Ok(Script::new(r.bytes("script", MAX_PAYOUT_SCRIPT)?))
}

impl Decode for MasternodeEntry {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(MasternodeEntry {
            pro_tx_hash: Hash256::decode_from(r)?,
            collateral: OutPoint::decode_from(r)?,
            owner_key: r.array()?,
            operator_key: r.array()?,
            voting_key: r.array()?,
            payout: read_script(r)?,
            operator_reward_bps: r.u16()?,
            operator_payout: match r.u8()? {
                0 => None,
                1 => Some(read_script(r)?),
                t => {
                    return Err(rusty_shared_types::DecodeError::InvalidTag {
                        what: "operator payout",
                        tag: u64::from(t),
                    })
                }
            },
            service: String::from_utf8(r.bytes("service", MAX_SERVICE_LEN)?)
                .map_err(|_| rusty_shared_types::DecodeError::InvalidValue("service"))?,
            registered_height: r.u64()?,
            last_paid_height: r.u64()?,
            pose_penalty: r.u32()?,
            pose_ban_height: r.option("ban height")?,
            revoked: bool::decode_from(r)?,
        })
    }
}

struct Member(Hash256, BlsPublicKeyBytes);

impl Encode for Member {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
        self.1.encode_to(out);
    }
}

impl Decode for Member {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Member(Hash256::decode_from(r)?, r.array()?))
    }
}

impl Encode for PendingDkg {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.quorum_hash.encode_to(out);
        self.quorum_height.encode_to(out);
        let members: Vec<Member> = self.members.iter().map(|(h, k)| Member(*h, *k)).collect();
        write_vec(out, &members);
    }
}

impl Decode for PendingDkg {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(PendingDkg {
            quorum_hash: Hash256::decode_from(r)?,
            quorum_height: r.u64()?,
            members: r
                .vec::<Member>("members", MAX_QUORUM_SIZE, 80)?
                .into_iter()
                .map(|m| (m.0, m.1))
                .collect(),
        })
    }
}

impl Encode for MinedQuorum {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.quorum_hash.encode_to(out);
        self.quorum_height.encode_to(out);
        self.mined_height.encode_to(out);
        write_vec(out, &self.members);
        self.valid_members.encode_to(out);
        write_vec(out, &self.vvec);
        write_option(out, &self.active_from);
    }
}

impl Decode for MinedQuorum {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(MinedQuorum {
            quorum_hash: Hash256::decode_from(r)?,
            quorum_height: r.u64()?,
            mined_height: r.u64()?,
            members: r.vec("members", MAX_QUORUM_SIZE, 32)?,
            valid_members: BitSet::decode_from(r)?,
            vvec: r.vec("vvec", MAX_QUORUM_SIZE, 48)?,
            active_from: r.option("quorum activation height")?,
        })
    }
}

impl Encode for MnState {
    fn encode_to(&self, out: &mut Vec<u8>) {
        rusty_shared_types::encoding::write_compact_size(out, self.entries.len() as u64);
        for e in self.entries.values() {
            e.encode_to(out);
        }
        write_vec(out, &self.pending);
        write_vec(out, &self.quorums);
    }
}

impl Decode for MnState {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let entries: Vec<MasternodeEntry> = r.vec("masternodes", usize::MAX, 200)?;
        let mut state = MnState {
            pending: r.vec("pending dkgs", 64, 41)?,
            quorums: r.vec("quorums", KEEP_QUORUMS, 90)?,
            ..MnState::default()
        };
        for e in entries {
            // Canonical: ascending by pro_tx_hash, no duplicates.
            if state
                .entries
                .last_key_value()
                .is_some_and(|(last, _)| *last >= e.pro_tx_hash)
            {
                return Err(rusty_shared_types::DecodeError::InvalidValue(
                    "masternode list order",
                ));
            }
            state.by_collateral.insert(e.collateral, e.pro_tx_hash);
            state.entries.insert(e.pro_tx_hash, e);
        }
        Ok(state)
    }
}

struct UndoEntry(Hash256, Option<MasternodeEntry>);

impl Encode for UndoEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
        write_option(out, &self.1);
    }
}

impl Decode for UndoEntry {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(UndoEntry(Hash256::decode_from(r)?, r.option("entry")?))
    }
}

impl Encode for MnUndo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        let entries: Vec<UndoEntry> = self
            .entries
            .iter()
            .map(|(h, e)| UndoEntry(*h, e.clone()))
            .collect();
        write_vec(out, &entries);
        match &self.quorums {
            None => out.push(0),
            Some((pending, quorums)) => {
                out.push(1);
                write_vec(out, pending);
                write_vec(out, quorums);
            }
        }
    }
}

impl Decode for MnUndo {
    fn decode_from(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let entries = r
            .vec::<UndoEntry>("undo entries", usize::MAX, 33)?
            .into_iter()
            .map(|u| (u.0, u.1))
            .collect();
        let quorums = match r.u8()? {
            0 => None,
            1 => Some((
                r.vec("pending dkgs", 64, 41)?,
                r.vec("quorums", KEEP_QUORUMS, 90)?,
            )),
            t => {
                return Err(rusty_shared_types::DecodeError::InvalidTag {
                    what: "undo quorums",
                    tag: u64::from(t),
                })
            }
        };
        Ok(MnUndo { entries, quorums })
    }
}
