//! Dash Core's `gobject`, over proposals that are transactions.
//!
//! Dash's two-step (`prepare` pays a collateral, `submit` gossips the
//! object) is one step here: `prepare` builds, pays and sends the proposal
//! transaction and returns its txid, which is the proposal's hash;
//! `submit` then only confirms the txid is known. The proposal data is
//! Dash's JSON (`name`, `url`, `payment_address`, `payment_amount`; here
//! also `first_superblock`, `superblocks`, `doc_hash`), given as JSON or
//! as the hex of that JSON as Dash's tools send it.

use std::collections::BTreeMap;

use jsonrpsee::{core::RpcResult, types::ErrorObjectOwned};
use rusty_shared_types::governance::VoteOutcome;
use serde_json::{json, Value};

use super::{
    super::{
        api::governance::{ProposalInfo, ProposalRequest, ProposalRequestKind},
        codes, parse_hash, rpc_error, running,
        wallet::send_error,
    },
    view, GovernanceRpc,
};

const SUBCOMMANDS: &str =
    "count, list, get, getcurrentvotes, check, prepare, submit, vote-many, vote-alias";

fn arg_str(v: &Option<Value>, what: &str) -> Result<String, ErrorObjectOwned> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(rpc_error(
            codes::TYPE_ERROR,
            format!("{what} must be a string, got {other}"),
        )),
        None => Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("{what} is required"),
        )),
    }
}

/// Dash's proposal JSON (or its hex) as a `gov_submit` request.
fn request_from(data: &Value) -> Result<ProposalRequest, ErrorObjectOwned> {
    let bad = |m: String| rpc_error(codes::INVALID_PARAMETER, format!("proposal data: {m}"));
    let obj: Value = match data {
        Value::Object(_) => data.clone(),
        Value::String(s) => {
            let text = if s.trim_start().starts_with('{') {
                s.clone()
            } else {
                let bytes = hex::decode(s).map_err(|_| bad("neither JSON nor hex".into()))?;
                String::from_utf8(bytes).map_err(|_| bad("hex of non-UTF-8".into()))?
            };
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        }
        other => return Err(bad(format!("expected an object or a string, got {other}"))),
    };
    let field = |k: &str| obj.get(k).cloned();
    let text = |k: &str| field(k).and_then(|v| v.as_str().map(str::to_owned));
    let title = text("name")
        .or_else(|| text("title"))
        .ok_or_else(|| bad("\"name\" is missing".into()))?;
    let kind =
        match (text("payment_address"), field("payment_amount")) {
            (Some(payee), Some(amount)) => ProposalRequestKind::Payment { payee, amount },
            _ => match (text("param"), field("value")) {
                (Some(param), Some(value)) => ProposalRequestKind::Param {
                    param,
                    value: value
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| value.to_string()),
                },
                _ => return Err(bad(
                    "a payment needs payment_address and payment_amount; a change param and value"
                        .into(),
                )),
            },
        };
    Ok(ProposalRequest {
        title,
        url: text("url").unwrap_or_default(),
        doc_hash: text("doc_hash"),
        first_superblock: field("first_superblock").and_then(|v| v.as_u64()),
        superblocks: field("superblocks")
            .and_then(|v| v.as_u64())
            .and_then(|v| u16::try_from(v).ok()),
        kind,
    })
}

/// A proposal in Dash's `gobject list`/`get` keys (plus ours).
fn dash_object(p: &ProposalInfo) -> Value {
    let data = json!({
        "type": 1,
        "name": p.title,
        "url": p.url,
        "payment_address": p.payee,
        "payment_amount": p.amount,
        "param": p.param,
        "value": p.value,
        "first_superblock": p.first_superblock,
        "superblocks": p.superblocks,
    });
    json!({
        "Hash": p.hash,
        "CollateralHash": p.hash,
        "ObjectType": 1,
        "CreationHeight": p.height,
        "DataString": data.to_string(),
        "DataHex": hex::encode(data.to_string()),
        "AbsoluteYesCount": p.net_yes,
        "YesCount": p.yes,
        "NoCount": p.no,
        "AbstainCount": p.abstain,
        "fBlockchainValidity": true,
        "IsValidReason": "",
        "fCachedValid": true,
        "fCachedFunding": p.passing,
        "fCachedDelete": false,
        "fCachedEndorsed": false,
        "detail": p,
    })
}

fn parse_signal_outcome(
    signal: &Option<Value>,
    outcome: &Option<Value>,
) -> Result<VoteOutcome, ErrorObjectOwned> {
    let signal = arg_str(signal, "vote signal")?;
    if signal != "funding" {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("vote signal must be \"funding\" (the only signal on chain); got \"{signal}\""),
        ));
    }
    arg_str(outcome, "vote outcome")?
        .parse()
        .map_err(|e: String| rpc_error(codes::INVALID_PARAMETER, e))
}

/// Dash's vote summary: `overall` and one `detail` line per masternode.
fn vote_summary(results: Vec<super::super::api::governance::VoteResult>) -> Value {
    let ok = results.iter().filter(|r| r.txid.is_some()).count();
    let failed = results.len() - ok;
    let detail: BTreeMap<String, Value> = results
        .into_iter()
        .map(|r| {
            let v = match (r.txid, r.error) {
                (Some(txid), _) => json!({"result": "success", "txid": txid}),
                (None, e) => json!({"result": "failed", "errorMessage": e}),
            };
            (r.masternode, v)
        })
        .collect();
    json!({
        "overall": format!("Voted successfully {ok} time(s) and failed {failed} time(s)."),
        "detail": detail,
    })
}

pub(super) async fn dispatch(
    rpc: &GovernanceRpc,
    command: &str,
    args: [Option<Value>; 5],
) -> RpcResult<Value> {
    let ctx = &rpc.0;
    match command {
        "count" => {
            let (proposals, votes) = ctx
                .with_state(|s| {
                    let gov = s.chain().gov();
                    let votes: u64 = gov
                        .proposals()
                        .map(|p| p.tally.yes + p.tally.no + p.tally.abstain)
                        .sum();
                    (gov.proposals().count(), votes)
                })
                .await?;
            if matches!(&args[0], Some(Value::String(m)) if m == "json") {
                return Ok(json!({"objects_total": proposals, "proposals": proposals,
                                 "triggers": 0, "other": 0, "erased": 0, "votes": votes}));
            }
            Ok(Value::String(format!(
                "Governance Objects: {proposals} (Proposals: {proposals}, Triggers: 0, Other: 0; Erased: 0), Votes: {votes}"
            )))
        }
        "list" => {
            let signal = match &args[0] {
                Some(v) => arg_str(&Some(v.clone()), "signal")?,
                None => "valid".into(),
            };
            if !["valid", "funding", "delete", "endorsed", "all"].contains(&signal.as_str()) {
                return Err(rpc_error(
                    codes::INVALID_PARAMETER,
                    "Invalid signal, should be 'valid', 'funding', 'delete', 'endorsed' or 'all'",
                ));
            }
            let list = ctx
                .with_state(|s| {
                    s.chain()
                        .gov()
                        .proposals()
                        .map(|p| view::proposal_info(s, p))
                        .collect::<Vec<_>>()
                })
                .await?;
            let out: BTreeMap<String, Value> = list
                .iter()
                .filter(|p| match signal.as_str() {
                    "funding" => p.passing,
                    "delete" | "endorsed" => false,
                    _ => true,
                })
                .map(|p| (p.hash.clone(), dash_object(p)))
                .collect();
            Ok(json!(out))
        }
        "get" => {
            let hash = parse_hash(&arg_str(&args[0], "governance-hash")?, "governance-hash")?;
            Ok(dash_object(&rpc.proposal(hash).await?))
        }
        "getcurrentvotes" => {
            let hash = parse_hash(&arg_str(&args[0], "governance-hash")?, "governance-hash")?;
            let votes = ctx
                .with_state(move |s| {
                    let chain = s.chain();
                    chain
                        .gov()
                        .votes_on(chain.db(), &hash)
                        .map_err(|e| rpc_error(codes::DATABASE_ERROR, e.to_string()))
                })
                .await??;
            let out: BTreeMap<String, Value> = votes
                .into_iter()
                .map(|(mn, v)| {
                    (
                        mn.to_string(),
                        Value::String(format!("{mn}:{}:{}:funding", v.height, v.outcome.name())),
                    )
                })
                .collect();
            Ok(json!(out))
        }
        "check" => {
            let data = args[0]
                .clone()
                .ok_or_else(|| rpc_error(codes::INVALID_PARAMETER, "proposal data is required"))?;
            let request = request_from(&data)?;
            ctx.with_state(move |s| {
                let proposal = view::proposal_from(&request, s)?;
                s.chain()
                    .gov()
                    .check_proposal(s.params(), &proposal, s.chain().height().saturating_add(1))
                    .map_err(|e| {
                        rpc_error(
                            codes::INVALID_PARAMETER,
                            format!("Invalid proposal data: {e}"),
                        )
                    })?;
                Ok::<_, ErrorObjectOwned>(json!({"Object status": "OK"}))
            })
            .await?
        }
        "prepare" => {
            // Dash: prepare <parent-hash> <revision> <time> <data-hex>; or
            // just <data> here.
            let data = args
                .iter()
                .rev()
                .flatten()
                .find(|v| {
                    v.is_object()
                        || v.as_str().is_some_and(|s| {
                            s.len() > 2 && (s.starts_with('{') || hex::decode(s).is_ok())
                        })
                })
                .cloned()
                .ok_or_else(|| {
                    rpc_error(
                        codes::INVALID_PARAMETER,
                        "proposal data (JSON or hex) is required",
                    )
                })?;
            let request = request_from(&data)?;
            let proposal = ctx
                .with_state(move |s| view::proposal_from(&request, s))
                .await??;
            let fee_rate = ctx.wallet_fee_rate;
            running(ctx.chain.submit_proposal(proposal, fee_rate).await)?
                .map(|txid| Value::String(txid.to_string()))
                .map_err(send_error)
        }
        "submit" => {
            // The last argument is the txid `prepare` returned.
            let txid = args
                .iter()
                .rev()
                .flatten()
                .find_map(|v| v.as_str().filter(|s| s.len() == 64))
                .ok_or_else(|| {
                    rpc_error(
                        codes::INVALID_PARAMETER,
                        "the txid from gobject prepare is required",
                    )
                })?;
            let hash = parse_hash(txid, "txid")?;
            let known = ctx
                .with_state(move |s| {
                    s.mempool().contains(&hash) || s.chain().gov().proposal(&hash).is_some()
                })
                .await?;
            if !known {
                return Err(rpc_error(
                    codes::INVALID_PARAMETER,
                    format!("{hash} is not a proposal in the mempool or on chain"),
                ));
            }
            Ok(Value::String(hash.to_string()))
        }
        "vote-many" => {
            let hash = parse_hash(&arg_str(&args[0], "governance-hash")?, "governance-hash")?;
            let outcome = parse_signal_outcome(&args[1], &args[2])?;
            Ok(vote_summary(rpc.vote(hash, outcome, None).await?))
        }
        "vote-alias" => {
            let hash = parse_hash(&arg_str(&args[0], "governance-hash")?, "governance-hash")?;
            let outcome = parse_signal_outcome(&args[1], &args[2])?;
            let mn = parse_hash(&arg_str(&args[3], "proTxHash")?, "proTxHash")?;
            Ok(vote_summary(rpc.vote(hash, outcome, Some(mn)).await?))
        }
        other => Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("gobject subcommand must be one of {SUBCOMMANDS}; got \"{other}\""),
        )),
    }
}
