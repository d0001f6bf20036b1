//! `protx register|update_service|revoke|list|info`: registration paid by
//! the node's wallet, the operator's special transactions signed with this
//! node's operator key, and reads of the list at the tip.

use jsonrpsee::{core::RpcResult, types::ErrorObjectOwned};
use rusty_crypto::bls;
use rusty_shared_types::{Address, Hash256};
use serde_json::{json, Value};

use super::{
    entry_facts, entry_json, not_found, operator_key, operator_public_key, parse_operator_pubkey,
    parse_revoke_reason, parse_reward_bps, parse_service, ListFilter, ProtxRequest,
};
use crate::rpc::{
    codes, parse_hash, rpc_error, running,
    wallet::{address_error, send_error},
    RpcContext,
};
use rusty_core::{
    masternode::{MasternodeEntry, MnState},
    state::Registration,
};

pub(super) async fn protx(ctx: &RpcContext, request: ProtxRequest) -> RpcResult<Value> {
    let fee_rate = ctx.wallet_fee_rate;
    match request {
        ProtxRequest::Register {
            operator_pub_key,
            service,
            operator_reward_bps,
            payout_address,
        } => {
            let operator_key = parse_operator_pubkey(&operator_pub_key)?;
            let service = parse_service(&service)?;
            let operator_reward_bps = parse_reward_bps(operator_reward_bps)?;
            let payout = payout_address
                .map(|a| Address::parse_for(&a, ctx.network).map_err(address_error))
                .transpose()?;
            // Checked against the list at the tip first for a clear error;
            // the mempool checks the transaction against the list again.
            let (key_check, service_check) = (operator_key, service.clone());
            ctx.with_state(move |s| {
                let mn = s.chain().mn();
                if let Some(other) = mn.by_operator_key(&key_check) {
                    return Err(rpc_error(
                        codes::INVALID_PARAMETER,
                        format!(
                            "operator key is already used by masternode {}",
                            other.pro_tx_hash
                        ),
                    ));
                }
                check_service_free(mn, &service_check, None)
            })
            .await??;
            let reg = Registration {
                operator_key,
                service,
                operator_reward_bps,
                payout,
            };
            let r =
                running(ctx.chain.register_masternode(reg, fee_rate).await)?.map_err(send_error)?;
            Ok(json!({
                "proTxHash": r.pro_tx_hash.to_string(),
                "collateralAddress": r.collateral_address.to_string(),
                "ownerAddress": r.owner_address.to_string(),
                "payoutAddress": r.payout_address.to_string(),
            }))
        }
        ProtxRequest::UpdateService {
            pro_tx_hash,
            service,
        } => {
            let pro = parse_hash(&pro_tx_hash, "proTxHash")?;
            let service = parse_service(&service)?;
            let key = operator_key(ctx)?;
            let (key_check, service_check) = (key.clone(), service.clone());
            ctx.with_state(move |s| {
                let mn = s.chain().mn();
                check_our_masternode(mn, &pro, &key_check)?;
                check_service_free(mn, &service_check, Some(&pro))
            })
            .await??;
            running(
                ctx.chain
                    .update_masternode_service(pro, service, key, fee_rate)
                    .await,
            )?
            .map(|txid| json!({ "txid": txid.to_string() }))
            .map_err(send_error)
        }
        ProtxRequest::Revoke {
            pro_tx_hash,
            reason,
        } => {
            let pro = parse_hash(&pro_tx_hash, "proTxHash")?;
            let reason = parse_revoke_reason(reason)?;
            let key = operator_key(ctx)?;
            let key_check = key.clone();
            ctx.with_state(move |s| {
                let e = check_our_masternode(s.chain().mn(), &pro, &key_check)?;
                if e.revoked {
                    return Err(rpc_error(
                        codes::INVALID_PARAMETER,
                        format!("masternode {pro} is already revoked"),
                    ));
                }
                Ok(())
            })
            .await??;
            running(
                ctx.chain
                    .revoke_masternode(pro, reason, key, fee_rate)
                    .await,
            )?
            .map(|txid| json!({ "txid": txid.to_string() }))
            .map_err(send_error)
        }
        ProtxRequest::List { filter, detailed } => {
            let filter = ListFilter::parse(filter.as_deref())?;
            let network = ctx.network;
            let operator = operator_public_key(ctx);
            ctx.with_state(move |s| {
                let entries: Vec<&MasternodeEntry> = s
                    .chain()
                    .mn()
                    .entries()
                    .filter(|e| filter.admits(e))
                    .collect();
                if detailed.unwrap_or(false) {
                    let facts = entry_facts(s, &entries, operator.as_ref(), network);
                    Value::Array(
                        entries
                            .iter()
                            .zip(&facts)
                            .map(|(e, f)| entry_json(e, f, network))
                            .collect(),
                    )
                } else {
                    Value::Array(
                        entries
                            .iter()
                            .map(|e| json!(e.pro_tx_hash.to_string()))
                            .collect(),
                    )
                }
            })
            .await
        }
        ProtxRequest::Info { pro_tx_hash } => {
            let pro = parse_hash(&pro_tx_hash, "proTxHash")?;
            let network = ctx.network;
            let operator = operator_public_key(ctx);
            ctx.with_state(move |s| {
                let e = s.chain().mn().get(&pro).ok_or_else(not_found)?;
                let facts = entry_facts(s, &[e], operator.as_ref(), network)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                Ok::<_, ErrorObjectOwned>(entry_json(e, &facts, network))
            })
            .await?
        }
    }
}

/// The entry `pro`, which must be operated with `key`.
fn check_our_masternode<'a>(
    mn: &'a MnState,
    pro: &Hash256,
    key: &bls::SecretKey,
) -> Result<&'a MasternodeEntry, ErrorObjectOwned> {
    let e = mn.get(pro).ok_or_else(not_found)?;
    let ours = key.public_key().to_bytes();
    if e.operator_key != ours {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "masternode {pro} is operated with key {}, not this node's {}",
                hex::encode(e.operator_key),
                hex::encode(ours)
            ),
        ));
    }
    Ok(e)
}

/// No masternode but `me` announces `service`.
fn check_service_free(
    mn: &MnState,
    service: &str,
    me: Option<&Hash256>,
) -> Result<(), ErrorObjectOwned> {
    match mn
        .entries()
        .find(|e| e.service == service && Some(&e.pro_tx_hash) != me)
    {
        Some(other) => Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!(
                "service {service} is already used by masternode {}",
                other.pro_tx_hash
            ),
        )),
        None => Ok(()),
    }
}
