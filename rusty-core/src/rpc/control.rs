//! `stop`, `help`, `uptime`.

use jsonrpsee::RpcModule;
use serde_json::json;

use super::{method, RpcContext};

pub fn register(m: &mut RpcModule<RpcContext>) {
    method(m, "stop", |_, ctx| async move {
        let _ = ctx.stop.send(true);
        Ok(json!("Rusty Coin node stopping"))
    });
    method(m, "help", |_, _| async move {
        Ok(json!(super::METHODS.join("\n")))
    });
}
