//! `rusty-cli gov`: governance through the node's typed `gov_*` RPC.

use anyhow::Result;
use rusty_node::rpc::api::governance::{GovernanceApiClient, ProposalRequest, ProposalRequestKind};
use serde_json::Value;

use crate::{
    args::{GlobalArgs, GovCommand, GovSubmitArgs},
    client::{connect, print, rpc_error},
};

/// The request `gov submit` sends.
fn submit_request(a: &GovSubmitArgs) -> ProposalRequest {
    let kind = match &a.param {
        Some(param) => ProposalRequestKind::Param {
            param: param.clone(),
            value: a.value.clone().unwrap_or_default(),
        },
        None => ProposalRequestKind::Payment {
            payee: a.payee.clone().unwrap_or_default(),
            // The node parses coins exactly (a string, never a float).
            amount: Value::String(a.amount.clone().unwrap_or_default()),
        },
    };
    ProposalRequest {
        title: a.title.clone(),
        url: a.url.clone(),
        doc_hash: a.doc_hash.clone(),
        first_superblock: a.first_superblock,
        superblocks: Some(a.superblocks),
        kind,
    }
}

pub fn run(g: &GlobalArgs, cmd: &GovCommand) -> Result<()> {
    let c = connect(g)?;
    let api = c.api();
    match cmd {
        GovCommand::Submit(a) => {
            let hash = c
                .run(api.gov_submit(submit_request(a)))
                .map_err(rpc_error)?;
            println!("{hash}");
        }
        GovCommand::Vote {
            proposal,
            outcome,
            all: _,
            masternode,
        } => {
            let results = c
                .run(api.gov_vote(proposal.clone(), outcome.clone(), masternode.clone()))
                .map_err(rpc_error)?;
            let failed = results.iter().filter(|r| r.error.is_some()).count();
            print(&serde_json::to_value(&results)?);
            if failed == results.len() {
                anyhow::bail!("no vote was accepted ({failed} refused)");
            }
        }
        GovCommand::List { state } => {
            let list = c
                .run(api.gov_list(Some(state.clone())))
                .map_err(rpc_error)?;
            print(&serde_json::to_value(list)?);
        }
        GovCommand::Show { proposal } => {
            let p = c.run(api.gov_get(proposal.clone())).map_err(rpc_error)?;
            print(&serde_json::to_value(p)?);
        }
        GovCommand::Treasury => {
            let t = c.run(api.gov_treasury()).map_err(rpc_error)?;
            print(&serde_json::to_value(t)?);
        }
        GovCommand::Params => {
            let p = c.run(api.gov_params()).map_err(rpc_error)?;
            print(&serde_json::to_value(p)?);
        }
    }
    Ok(())
}
