//! `stop`, `help`: the node itself.

use jsonrpsee::{core::RpcResult, proc_macros::rpc};

/// Control of the running node.
#[rpc(server, client)]
pub trait ControlApi {
    /// Stops the node, as Bitcoin Core's `stop`: the reply comes first, then
    /// the node shuts down in order.
    #[method(name = "stop")]
    async fn stop(&self) -> RpcResult<String>;

    /// Every method, one per line.
    #[method(name = "help")]
    async fn help(&self) -> RpcResult<String>;
}
