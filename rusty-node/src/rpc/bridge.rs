//! The bridge's RPC over [`crate::bridge::service::BridgeHandle`].

use std::sync::Arc;

use jsonrpsee::{core::async_trait, core::RpcResult, types::ErrorObjectOwned};
use rusty_network::PeerId;

use super::{
    api::bridge::{BridgeApiServer, OfferInfo, SwapInfo},
    codes, parse_hash, rpc_error, RpcContext,
};
use crate::bridge::{
    messages::Asset,
    service::{BridgeError, BridgeHandle},
};

/// Implements [`BridgeApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct BridgeRpc(pub Arc<RpcContext>);

fn bridge_error(e: BridgeError) -> ErrorObjectOwned {
    let code = match &e {
        BridgeError::Unknown(_) => codes::INVALID_ADDRESS_OR_KEY,
        BridgeError::RefundNotYet { .. } => codes::VERIFY_REJECTED,
        BridgeError::NoChain(_) | BridgeError::Invalid(_) => codes::INVALID_PARAMETER,
        BridgeError::Chain(_) | BridgeError::Stopped => codes::MISC_ERROR,
    };
    rpc_error(code, e.to_string())
}

/// `"<coins> <network>"` → an asset in base units.
pub fn parse_asset(s: &str) -> Result<Asset, ErrorObjectOwned> {
    let bad = |why: &str| {
        rpc_error(
            codes::INVALID_PARAMETER,
            format!("`{s}`: {why} (expected \"<amount> <network>\", e.g. \"5 dev\")"),
        )
    };
    let mut parts = s.split_whitespace();
    let (Some(amount), Some(network), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not two words"));
    };
    use crate::bridge::networks::{parse_units, BridgeNetwork};
    let network: BridgeNetwork = network.parse().map_err(|_| bad("unknown network"))?;
    let units = match network {
        BridgeNetwork::Ours(_) => {
            super::parse_amount(&serde_json::Value::String(amount.to_string()))?.units()
        }
        BridgeNetwork::Eth { .. } => parse_units(amount, network.decimals())
            .ok_or_else(|| bad("not an amount of ether with at most 9 decimals"))?,
    };
    if units == 0 {
        return Err(bad("the amount is zero"));
    }
    Ok(Asset {
        network: network.name(),
        amount: units,
    })
}

impl BridgeRpc {
    fn bridge(&self) -> Result<&BridgeHandle, ErrorObjectOwned> {
        self.0.bridge.as_ref().ok_or_else(|| {
            rpc_error(
                codes::MISC_ERROR,
                "the bridge needs P2P and a wallet; this node runs without one",
            )
        })
    }
}

#[async_trait]
impl BridgeApiServer for BridgeRpc {
    async fn swap(&self, peer: String, give: String, want: String) -> RpcResult<SwapInfo> {
        let peer: PeerId = peer.parse().map_err(|_| {
            rpc_error(
                codes::INVALID_PARAMETER,
                format!("`{peer}` is not a peer id"),
            )
        })?;
        let (give, want) = (parse_asset(&give)?, parse_asset(&want)?);
        self.bridge()?
            .initiate(peer, give, want)
            .await
            .map_err(bridge_error)
    }

    async fn accept(&self, id: String) -> RpcResult<SwapInfo> {
        let id = parse_hash(&id, "id")?;
        self.bridge()?.accept(id).await.map_err(bridge_error)
    }

    async fn status(&self, id: String) -> RpcResult<SwapInfo> {
        let id = parse_hash(&id, "id")?;
        self.bridge()?.status(id).await.map_err(bridge_error)
    }

    async fn list(&self, state: Option<String>) -> RpcResult<Vec<SwapInfo>> {
        let mut all = self.bridge()?.list().await.map_err(bridge_error)?;
        if let Some(want) = state {
            all.retain(|s| {
                s.status == want
                    || serde_json::to_value(s.state).is_ok_and(|v| v.as_str() == Some(&want))
            });
        }
        Ok(all)
    }

    async fn refund(&self, id: String) -> RpcResult<SwapInfo> {
        let id = parse_hash(&id, "id")?;
        self.bridge()?.refund(id).await.map_err(bridge_error)
    }

    async fn offers(&self) -> RpcResult<Vec<OfferInfo>> {
        self.bridge()?.offers().await.map_err(bridge_error)
    }
}
