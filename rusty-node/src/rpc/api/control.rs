//! `stop`, `help`: the node itself.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};

/// Control of the running node.
#[rpc(server, client)]
pub trait ControlApi {
    /// Stops the node, as Bitcoin Core's `stop`: the reply comes first, then
    /// the node shuts down in order.
    #[method(name = "stop")]
    async fn stop(&self) -> RpcResult<String>;

    /// Every method's usage, by category, or one method's usage and summary.
    #[method(name = "help")]
    async fn help(&self, command: Option<String>) -> RpcResult<String>;
}
