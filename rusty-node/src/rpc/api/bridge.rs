//! The bridge: `bridge_swap`, `bridge_accept`, `bridge_status`,
//! `bridge_list`, `bridge_refund`, `bridge_offers` (docs/bridge.md).

use jsonrpsee::{core::RpcResult, proc_macros::rpc};

pub use crate::bridge::service::{OfferInfo, SwapInfo};

#[rpc(server, client)]
pub trait BridgeApi {
    /// Offers `give` (`"<amount> <network>"`, e.g. `"5 dev"`) for `want`
    /// (`"10 par-dev"`) to `peer` (a peer id of this chain's network).
    #[method(name = "bridge_swap")]
    async fn swap(&self, peer: String, give: String, want: String) -> RpcResult<SwapInfo>;

    /// Takes a received offer.
    #[method(name = "bridge_accept")]
    async fn accept(&self, id: String) -> RpcResult<SwapInfo>;

    #[method(name = "bridge_status")]
    async fn status(&self, id: String) -> RpcResult<SwapInfo>;

    /// Every swap, oldest first; `state` keeps those in one state or status.
    #[method(name = "bridge_list")]
    async fn list(&self, state: Option<String>) -> RpcResult<Vec<SwapInfo>>;

    /// Refunds our HTLC now; refused before its lock, with the height.
    #[method(name = "bridge_refund")]
    async fn refund(&self, id: String) -> RpcResult<SwapInfo>;

    /// Offers received and not taken.
    #[method(name = "bridge_offers")]
    async fn offers(&self) -> RpcResult<Vec<OfferInfo>>;
}
