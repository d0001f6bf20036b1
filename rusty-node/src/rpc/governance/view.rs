//! What the governance RPC shows, computed from the node state: proposal
//! views with their tally and margin, the parsing of a submitted proposal,
//! parameter values as text.

use jsonrpsee::types::ErrorObjectOwned;
use rusty_core::{
    governance::{GovernanceParams, LiveProposal, Tally},
    state::NodeState,
};
use rusty_shared_types::{
    governance::{ParamChange, Proposal, ProposalKind},
    Address, Hash256,
};

use super::super::{
    api::governance::{ProposalInfo, ProposalRequest, ProposalRequestKind},
    codes, json as render, parse_amount, parse_hash, rpc_error,
};

/// A change's parameter name and value as `gov submit --param` takes them.
pub fn change_text(c: &ParamChange) -> (String, String) {
    let value = match *c {
        ParamChange::RewardSplit {
            miner_bp,
            masternode_bp,
            treasury_bp,
        } => format!("{miner_bp},{masternode_bp},{treasury_bp}"),
        ParamChange::MaxBlockSize(v) | ParamChange::MinRelayFee(v) => v.to_string(),
    };
    (c.name().to_owned(), value)
}

/// Parses `--param NAME --value VALUE`.
pub fn parse_change(param: &str, value: &str) -> Result<ParamChange, String> {
    let number = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|_| format!("{param} takes a whole number, got \"{v}\""))
    };
    match param {
        "reward-split" => {
            let parts: Vec<&str> = value.split(',').map(str::trim).collect();
            let [m, n, t] = parts.as_slice() else {
                return Err(format!(
                    "reward-split takes three basis-point shares miner,masternode,treasury (e.g. 4500,4500,1000), got \"{value}\""
                ));
            };
            let bp = |v: &str| {
                v.parse::<u16>()
                    .map_err(|_| format!("\"{v}\" is not a share in basis points (0–10000)"))
            };
            Ok(ParamChange::RewardSplit {
                miner_bp: bp(m)?,
                masternode_bp: bp(n)?,
                treasury_bp: bp(t)?,
            })
        }
        "max-block-size" => Ok(ParamChange::MaxBlockSize(number(value)?)),
        "min-relay-fee" => Ok(ParamChange::MinRelayFee(number(value)?)),
        other => Err(format!(
            "unknown parameter \"{other}\": reward-split, max-block-size or min-relay-fee"
        )),
    }
}

/// The first superblock a proposal made now can still be voted for.
pub fn default_first_superblock(g: &GovernanceParams, tip: u64) -> u64 {
    let next = g.next_superblock(tip);
    // Its tally must be after the block that carries the proposal.
    if g.snapshot_height(next) > tip.saturating_add(1) {
        next
    } else {
        next.saturating_add(g.superblock_cycle)
    }
}

/// Builds the proposal a `gov_submit` request describes.
pub fn proposal_from(req: &ProposalRequest, s: &NodeState) -> Result<Proposal, ErrorObjectOwned> {
    let params = s.params();
    let g = GovernanceParams::of(params.network);
    let invalid = |m: String| rpc_error(codes::INVALID_PARAMETER, m);
    let doc_hash = match &req.doc_hash {
        Some(h) if !h.is_empty() => parse_hash(h, "doc_hash")?,
        _ => Hash256::ZERO,
    };
    let first_superblock = req
        .first_superblock
        .unwrap_or_else(|| default_first_superblock(&g, s.chain().height()));
    let (kind, superblocks) = match &req.kind {
        ProposalRequestKind::Payment { payee, amount } => {
            let payee = Address::parse_for(payee, params.network).map_err(|e| {
                rpc_error(codes::INVALID_ADDRESS_OR_KEY, format!("Invalid payee: {e}"))
            })?;
            let amount = parse_amount(amount)?;
            (
                ProposalKind::TreasuryPayment {
                    payee: payee.lock_script(),
                    amount: amount.units(),
                },
                req.superblocks.unwrap_or(1),
            )
        }
        ProposalRequestKind::Param { param, value } => (
            ProposalKind::ParamChange(parse_change(param, value).map_err(invalid)?),
            req.superblocks.unwrap_or(1),
        ),
    };
    if req.title.len() > rusty_shared_types::governance::MAX_TITLE_LEN {
        return Err(invalid(format!(
            "the title is {} bytes; at most {}",
            req.title.len(),
            rusty_shared_types::governance::MAX_TITLE_LEN
        )));
    }
    if req.url.len() > rusty_shared_types::governance::MAX_URL_LEN {
        return Err(invalid(format!(
            "the url is {} bytes; at most {}",
            req.url.len(),
            rusty_shared_types::governance::MAX_URL_LEN
        )));
    }
    Ok(Proposal {
        title: req.title.clone(),
        url: req.url.clone(),
        doc_hash,
        first_superblock,
        superblocks,
        kind,
    })
}

/// A live proposal as the RPC shows it.
pub fn proposal_info(s: &NodeState, p: &LiveProposal) -> ProposalInfo {
    let params = s.params();
    let g = GovernanceParams::of(params.network);
    let tip = s.chain().height();
    let eligible = s.chain().mn().valid_count() as u64;
    let t: Tally = p.tally;
    let net_yes = i64::try_from(t.net_yes()).unwrap_or(i64::MIN);
    let (kind, payee, amount, param, value, threshold, passing, margin) = match &p.proposal.kind {
        ProposalKind::TreasuryPayment { payee, amount } => {
            let threshold = Tally::funding_threshold(eligible, g.min_quorum);
            let payee = super::super::masternode::script_address_string(payee, params.network);
            let amount = rusty_shared_types::Amount::from_units(*amount).unwrap_or_default();
            (
                "payment",
                Some(payee),
                Some(render::amount(amount)),
                None,
                None,
                threshold,
                t.funds(eligible, g.min_quorum),
                net_yes.saturating_sub(i64::try_from(threshold).unwrap_or(i64::MAX)),
            )
        }
        ProposalKind::ParamChange(c) => {
            let (name, value) = change_text(c);
            let needed = t.change_yes_needed(eligible);
            (
                "param",
                None,
                None,
                Some(name),
                Some(value),
                needed,
                t.changes_param(eligible),
                i64::try_from(t.yes).unwrap_or(i64::MAX) - i64::try_from(needed).unwrap_or(0),
            )
        }
    };
    let closes = p.voting_closes(&g);
    let last = p.last_superblock(&g);
    // The next superblock it covers whose tally is not yet taken, or the
    // one already decided.
    let decided = s
        .chain()
        .gov()
        .decision()
        .filter(|d| {
            d.payments.iter().any(|x| x.proposal == p.txid)
                || d.changes.iter().any(|(h, _)| *h == p.txid)
        })
        .map(|d| d.superblock);
    let upcoming = (0..p.proposal.superblocks)
        .map(|i| p.proposal.first_superblock + u64::from(i) * g.superblock_cycle)
        .find(|sb| g.snapshot_height(*sb) >= tip);
    let projected_height = decided.or(if passing { upcoming } else { None });
    ProposalInfo {
        hash: p.txid.to_string(),
        title: p.proposal.title.clone(),
        url: p.proposal.url.clone(),
        doc_hash: p.proposal.doc_hash.to_string(),
        kind: kind.into(),
        payee,
        amount,
        param,
        value,
        height: p.height,
        first_superblock: p.proposal.first_superblock,
        superblocks: p.proposal.superblocks,
        last_superblock: last,
        voting_closes: closes,
        state: if tip < closes { "open" } else { "closed" }.into(),
        yes: t.yes,
        no: t.no,
        abstain: t.abstain,
        net_yes,
        eligible,
        threshold,
        passing,
        margin,
        projected_height,
    }
}
