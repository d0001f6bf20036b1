//! The server side of [`super::api::control`]: `stop`, `help`.

use std::sync::Arc;

use jsonrpsee::core::{async_trait, RpcResult};

use super::{api::control::ControlApiServer, RpcContext};

/// Implements [`ControlApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct ControlRpc(pub Arc<RpcContext>);

#[async_trait]
impl ControlApiServer for ControlRpc {
    async fn stop(&self) -> RpcResult<String> {
        let _ = self.0.stop.send(true);
        Ok("Rusty Coin node stopping".to_owned())
    }

    async fn help(&self, command: Option<String>) -> RpcResult<String> {
        match command {
            None => Ok(super::params::help_listing()),
            Some(c) => match super::params::signature(&c) {
                Some(s) => Ok(s.usage()),
                // Core's answer for an unknown command, a result, not an error.
                None => Ok(format!("help: unknown command: {c}")),
            },
        }
    }
}
