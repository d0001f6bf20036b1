//! Legacy JSON-RPC 1.0 calls (what Bitcoin client libraries send) rewritten
//! to 2.0 for jsonrpsee, and jsonrpsee's replies rewritten back, with the
//! HTTP status Bitcoin Core gives them.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Bitcoin Core's HTTP status for a legacy call's reply: 200 on success;
/// on error 404 for "method not found", 400 for "invalid request" and 500
/// for every other error (`JSONErrorReply` in Core's `httprpc.cpp`). JSON-RPC
/// 2.0 replies and batches are always 200.
pub(super) fn legacy_status(error: &Value) -> u16 {
    if error.is_null() {
        return 200;
    }
    match error.get("code").and_then(Value::as_i64) {
        Some(-32601) => 404,
        Some(-32600) => 400,
        _ => 500,
    }
}

/// Whether `value` is one JSON-RPC 2.0 notification (a call without an
/// `id`), which Bitcoin Core answers with `204 No Content`.
pub(super) fn is_notification(value: &Value) -> bool {
    matches!(value, Value::Object(call)
        if call.get("jsonrpc").and_then(Value::as_str) == Some("2.0") && !call.contains_key("id"))
}

/// Core's answer (status 400) to a single call whose `jsonrpc` member is
/// neither "1.0" nor "2.0"; `None` for any other request.
pub(super) fn unsupported_version(value: &Value) -> Option<String> {
    let Value::Object(call) = value else {
        return None;
    };
    let version = call.get("jsonrpc")?;
    if matches!(version.as_str(), Some("1.0" | "2.0")) {
        return None;
    }
    let message = if version.is_string() {
        "JSON-RPC version not supported"
    } else {
        "jsonrpc field must be a string"
    };
    let body = serde_json::json!({
        "result": null,
        "error": {"code": -32600, "message": message},
        "id": call.get("id").cloned().unwrap_or(Value::Null),
    });
    Some(body.to_string())
}

/// The body Bitcoin Core answers an unparseable request with (status 500):
/// it cannot know the request's version, so the reply is legacy-shaped.
pub(super) fn parse_error_body(message: &str) -> String {
    serde_json::json!({
        "result": null,
        "error": {"code": -32700, "message": message},
        "id": null,
    })
    .to_string()
}

/// A request body that held legacy JSON-RPC 1.0 calls, rewritten to 2.0 for jsonrpsee.
///
/// Every legacy call gets a fresh id that names it uniquely, because the ids clients send
/// cannot be trusted for that: 1.0 clients often send `null` or reuse one id throughout, and
/// jsonrpsee would treat an id-less call as a notification and not answer it at all.
#[derive(Debug)]
pub(super) struct LegacyRequest {
    /// The rewritten body to hand to jsonrpsee.
    pub(super) body: Vec<u8>,
    pub(super) shape: LegacyShape,
}

#[derive(Debug)]
pub(super) enum LegacyShape {
    /// One legacy call; its reply goes back with this id.
    Single { original_id: Value },
    /// A batch with legacy elements: their replies are found by the ids given to them.
    Batch {
        original_ids: HashMap<String, Value>,
    },
}

impl LegacyRequest {
    /// Rewrites `body` if it holds at least one legacy call; `None` leaves it to jsonrpsee.
    #[cfg(test)]
    pub(super) fn rewrite(body: &[u8]) -> Option<Self> {
        Self::from_value(serde_json::from_slice(body).ok()?)
    }

    /// [`LegacyRequest::rewrite`] of a body the caller already parsed.
    pub(super) fn from_value(mut value: Value) -> Option<Self> {
        // A per-request nonce keeps our ids apart from those of 2.0 elements of the same batch.
        let prefix = format!("rusty-legacy-{:016x}-", rand::random::<u64>());
        let shape = match &mut value {
            Value::Object(call) if is_legacy(call) => LegacyShape::Single {
                original_id: upgrade_call(call, format!("{prefix}0")),
            },
            Value::Array(calls) => {
                let mut original_ids = HashMap::new();
                for (index, element) in calls.iter_mut().enumerate() {
                    if let Value::Object(call) = element {
                        if is_legacy(call) {
                            let id = format!("{prefix}{index}");
                            original_ids.insert(id.clone(), upgrade_call(call, id));
                        }
                    }
                }
                if original_ids.is_empty() {
                    return None;
                }
                LegacyShape::Batch { original_ids }
            }
            _ => return None,
        };
        let body = serde_json::to_vec(&value).ok()?;
        Some(Self { body, shape })
    }
}

impl LegacyShape {
    /// Rewrites jsonrpsee's reply into the shapes the calls were made in,
    /// with the HTTP status Bitcoin Core would give it; `None` if the reply
    /// is not what a JSON-RPC reply to this request looks like, which then
    /// goes out as is.
    pub(super) fn rewrite_reply(&self, reply: &[u8]) -> Option<(Vec<u8>, u16)> {
        let reply: Value = serde_json::from_slice(reply).ok()?;
        match (self, reply) {
            // A single call's reply belongs to it whatever id it carries (a parse error, say).
            (LegacyShape::Single { original_id }, Value::Object(reply)) => {
                let status = legacy_status(reply.get("error").unwrap_or(&Value::Null));
                Some((legacy_reply(&reply, original_id).into_bytes(), status))
            }
            (LegacyShape::Batch { original_ids }, Value::Array(replies)) => {
                let elements: Vec<String> = replies
                    .iter()
                    .map(|element| {
                        let original_id = element
                            .get("id")
                            .and_then(Value::as_str)
                            .and_then(|id| original_ids.get(id));
                        match (element, original_id) {
                            (Value::Object(reply), Some(id)) => legacy_reply(reply, id),
                            _ => element.to_string(),
                        }
                    })
                    .collect();
                // A batch is 200 whatever its elements say.
                Some((format!("[{}]", elements.join(",")).into_bytes(), 200))
            }
            // A batch refused as a whole (too many calls, say) is answered by one 2.0 error.
            _ => None,
        }
    }
}

/// Whether a call is legacy JSON-RPC 1.0, which Bitcoin Core recognises by a missing
/// `jsonrpc` member or by `"jsonrpc": "1.0"`. Any other version is left for jsonrpsee to
/// refuse as an invalid request, as Bitcoin Core refuses it.
pub(super) fn is_legacy(call: &Map<String, Value>) -> bool {
    match call.get("jsonrpc") {
        None => true,
        Some(Value::String(version)) => version == "1.0",
        Some(_) => false,
    }
}

/// Turns a legacy call into a 2.0 one with id `id`; returns the id it had (`null` if none).
fn upgrade_call(call: &mut Map<String, Value>, id: String) -> Value {
    call.insert("jsonrpc".to_owned(), Value::from("2.0"));
    // Bitcoin Core takes missing or null params as no params.
    if call.get("params").is_none_or(Value::is_null) {
        call.insert("params".to_owned(), Value::Array(Vec::new()));
    }
    call.insert("id".to_owned(), Value::String(id))
        .unwrap_or(Value::Null)
}

/// A 2.0 reply in 1.0 shape: all of `result`, `error` and `id`, in Bitcoin Core's order.
fn legacy_reply(reply: &Map<String, Value>, original_id: &Value) -> String {
    let result = reply.get("result").unwrap_or(&Value::Null);
    let error = reply.get("error").unwrap_or(&Value::Null);
    format!(r#"{{"result":{result},"error":{error},"id":{original_id}}}"#)
}
