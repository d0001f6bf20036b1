//! `/api/v1/*`: JSON over the same handlers the JSON-RPC server runs. Each
//! route calls one or a few RPC methods in-process (`RpcModule::call`) and
//! returns their results as they are, so the UI and the RPC cannot drift
//! apart; an RPC error becomes `{"error": message, "code": code}` with a
//! 4xx/5xx status. The routes are listed in `docs/ui.md`.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::{Extension, Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Json, Router,
};
use futures::Stream;
use jsonrpsee::{core::params::ArrayParams, MethodsError};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::{error, session::PendingSend, set_cookie, CurrentSession, Ui};
use crate::rpc::codes;

type Shared = State<Arc<Ui>>;

pub fn router() -> Router<Arc<Ui>> {
    Router::new()
        .route("/api/v1/session", get(session))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/status", get(status))
        .route("/api/v1/blocks", get(recent_blocks))
        .route("/api/v1/block/:id", get(block))
        .route("/api/v1/tx/:txid", get(transaction))
        .route("/api/v1/address/:address", get(address))
        .route("/api/v1/search", get(search))
        .route("/api/v1/mempool", get(mempool))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/media", get(media_list))
        .route("/api/v1/media/:id", get(media_info))
        .route("/api/v1/media/:id/status", get(media_status))
        .route("/api/v1/media/:id/view", post(media_view))
        .route("/api/v1/media/:id/buy", post(media_buy))
        .route("/api/v1/masternodes", get(masternodes))
        .route("/api/v1/governance", get(governance))
        .route("/api/v1/governance/vote", post(governance_vote))
        .route("/api/v1/wallet", get(wallet))
        .route("/api/v1/wallet/address", post(wallet_address))
        .route("/api/v1/wallet/prepare", post(wallet_prepare))
        .route("/api/v1/wallet/send", post(wallet_send))
        .route("/api/v1/events", get(events))
}

/// An RPC failure as an HTTP answer.
#[derive(Debug)]
pub struct ApiError(Box<Response>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for ApiError {
    fn from(r: Response) -> Self {
        ApiError(Box::new(r))
    }
}

impl ApiError {
    /// `{"error": message}` with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::from(error(status, message))
    }
}

/// A height, if `s` is all digits and fits.
fn height_of(s: &str) -> Option<u64> {
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

impl From<MethodsError> for ApiError {
    fn from(e: MethodsError) -> Self {
        match e {
            MethodsError::JsonRpc(e) => {
                let status = match e.code() {
                    codes::INVALID_ADDRESS_OR_KEY | codes::INVALID_PARAMETER => {
                        StatusCode::NOT_FOUND
                    }
                    codes::TYPE_ERROR
                    | codes::INVALID_PARAMS
                    | codes::DESERIALIZATION_ERROR
                    | codes::WALLET_INSUFFICIENT_FUNDS
                    | codes::VERIFY_REJECTED
                    | codes::VERIFY_ERROR => StatusCode::BAD_REQUEST,
                    codes::WALLET_NOT_FOUND | codes::CLIENT_P2P_DISABLED => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                ApiError::from(
                    (
                        status,
                        Json(json!({ "error": e.message(), "code": e.code() })),
                    )
                        .into_response(),
                )
            }
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

impl Ui {
    /// Calls RPC method `method` with positional `params`.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, ApiError> {
        let mut p = ArrayParams::new();
        for v in params {
            p.insert(v)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        }
        Ok(self.rpc.call::<_, Value>(method, p).await?)
    }
}

fn require_login(s: &CurrentSession) -> Result<(), ApiError> {
    if s.0.authenticated {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "log in first (with the RPC cookie or password)",
        ))
    }
}

async fn session(Extension(s): Extension<CurrentSession>) -> Json<Value> {
    Json(json!({ "authenticated": s.0.authenticated, "csrf": s.0.csrf }))
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    user: String,
    password: String,
}

/// The user of a login form: the cookie's when left empty.
fn login_user(user: &str) -> &str {
    if user.is_empty() {
        crate::rpc::http::COOKIE_USER
    } else {
        user
    }
}

/// Checks a user and password against the RPC credentials, within the
/// failed-login limit; `wrong` is the answer's message when they do not
/// match.
async fn check_password(ui: &Ui, user: &str, password: &str, wrong: &str) -> Result<(), ApiError> {
    if !ui.sessions.login_allowed() {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed passwords; wait a minute",
        ));
    }
    if ui
        .auth
        .verify_credentials(login_user(user), password)
        .is_none()
    {
        ui.sessions.login_failed();
        // As the RPC server does: a wrong password waits before its answer.
        tokio::time::sleep(crate::rpc::http::AUTH_FAILURE_DELAY).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, wrong));
    }
    Ok(())
}

async fn login(
    State(ui): Shared,
    Extension(s): Extension<CurrentSession>,
    Json(form): Json<Login>,
) -> Result<Response, ApiError> {
    check_password(&ui, &form.user, &form.password, "wrong user or password").await?;
    let view = ui.sessions.authenticate(&s.0.id);
    let mut response = Json(json!({ "authenticated": true, "csrf": view.csrf })).into_response();
    response
        .headers_mut()
        .append(axum::http::header::SET_COOKIE, set_cookie(&view.id));
    Ok(response)
}

async fn logout(State(ui): Shared, Extension(s): Extension<CurrentSession>) -> Json<Value> {
    ui.sessions.end(&s.0.id);
    Json(json!({ "authenticated": false }))
}

async fn status(State(ui): Shared) -> ApiResult {
    let chain = ui.call("getblockchaininfo", vec![]).await?;
    let mempool = ui.call("getmempoolinfo", vec![]).await?;
    let network = ui.call("getnetworkinfo", vec![]).await.ok();
    let chainlock = ui.call("getbestchainlock", vec![]).await.ok();
    Ok(Json(json!({
        "chain": chain,
        "mempool": mempool,
        "network": network,
        "chainlock": chainlock,
    })))
}

#[derive(Deserialize)]
struct Count {
    count: Option<u64>,
}

async fn recent_blocks(State(ui): Shared, Query(q): Query<Count>) -> ApiResult {
    let count = q.count.unwrap_or(10).clamp(1, 50);
    let tip = ui
        .call("getblockcount", vec![])
        .await?
        .as_u64()
        .unwrap_or(0);
    let mut blocks = Vec::new();
    for height in (tip.saturating_sub(count - 1)..=tip).rev() {
        let hash = ui.call("getblockhash", vec![json!(height)]).await?;
        let header = ui.call("getblockheader", vec![hash, json!(true)]).await?;
        blocks.push(header);
    }
    Ok(Json(Value::Array(blocks)))
}

/// A block by hash or height, with its transactions decoded.
async fn block(State(ui): Shared, Path(id): Path<String>) -> ApiResult {
    let hash = match height_of(&id) {
        Some(height) => ui.call("getblockhash", vec![json!(height)]).await?,
        None => json!(id),
    };
    Ok(Json(ui.call("getblock", vec![hash, json!(2)]).await?))
}

async fn transaction(State(ui): Shared, Path(txid): Path<String>) -> ApiResult {
    Ok(Json(
        ui.call("getrawtransaction", vec![json!(txid), json!(true)])
            .await?,
    ))
}

async fn address(State(ui): Shared, Path(address): Path<String>) -> ApiResult {
    let validation = ui.call("validateaddress", vec![json!(address)]).await?;
    if validation["isvalid"] != json!(true) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "not an address of this network: {}",
                validation["error"].as_str().unwrap_or("invalid")
            ),
        ));
    }
    // The scan reads the whole UTXO set: one at a time, and a busy answer
    // rather than a queue of them.
    let Ok(_permit) = ui.scans.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "another address lookup is running; try again",
        ));
    };
    let utxos = ui.call("getaddressutxos", vec![json!(address)]).await?;
    let total: u64 = utxos
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["satoshis"].as_u64()).sum())
        .unwrap_or(0);
    Ok(Json(json!({
        "address": address,
        "utxos": utxos,
        "balance_units": total,
        "limit": crate::rpc::api::blockchain::ADDRESS_UTXOS_LIMIT,
    })))
}

#[derive(Deserialize)]
struct Search {
    q: String,
}

/// What a search term names: `{"kind": "block"|"tx"|"address", "id"}`.
async fn search(State(ui): Shared, Query(q): Query<Search>) -> ApiResult {
    let q = q.q.trim().to_owned();
    if let Some(height) = height_of(&q) {
        return match ui.call("getblockhash", vec![json!(height)]).await {
            Ok(h) => Ok(Json(json!({ "kind": "block", "id": h }))),
            Err(_) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no block at that height",
            )),
        };
    }
    if q.len() == 64 && q.bytes().all(|b| b.is_ascii_hexdigit()) {
        if ui
            .call("getblockheader", vec![json!(q), json!(true)])
            .await
            .is_ok()
        {
            return Ok(Json(json!({ "kind": "block", "id": q })));
        }
        if ui
            .call("getrawtransaction", vec![json!(q), json!(true)])
            .await
            .is_ok()
        {
            return Ok(Json(json!({ "kind": "tx", "id": q })));
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no block or transaction with that hash",
        ));
    }
    let v = ui.call("validateaddress", vec![json!(q)]).await?;
    if v["isvalid"] == json!(true) {
        return Ok(Json(json!({ "kind": "address", "id": q })));
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not a height, block hash, txid or address",
    ))
}

async fn mempool(State(ui): Shared) -> ApiResult {
    let info = ui.call("getmempoolinfo", vec![]).await?;
    let entries = ui.call("getrawmempool", vec![json!(true)]).await?;
    let chain = ui.call("getblockchaininfo", vec![]).await?;
    Ok(Json(
        json!({ "info": info, "entries": entries, "chain": chain }),
    ))
}

async fn peers(State(ui): Shared) -> ApiResult {
    Ok(Json(ui.call("getpeerinfo", vec![]).await?))
}

#[derive(Deserialize)]
struct MediaQuery {
    q: Option<String>,
}

async fn media_list(State(ui): Shared, Query(q): Query<MediaQuery>) -> ApiResult {
    Ok(Json(match q.q.filter(|q| !q.trim().is_empty()) {
        Some(q) => ui.call("stream_search", vec![json!(q)]).await?,
        None => ui.call("stream_list", vec![]).await?,
    }))
}

async fn media_info(State(ui): Shared, Path(id): Path<String>) -> ApiResult {
    Ok(Json(ui.call("stream_info", vec![json!(id)]).await?))
}

async fn media_status(State(ui): Shared, Path(id): Path<String>) -> ApiResult {
    Ok(Json(ui.call("stream_status", vec![json!(id)]).await?))
}

/// Starts (or joins) the download or live stream, so the player can play.
async fn media_view(State(ui): Shared, Path(id): Path<String>) -> ApiResult {
    Ok(Json(ui.call("stream_view", vec![json!(id)]).await?))
}

async fn media_buy(
    State(ui): Shared,
    Extension(s): Extension<CurrentSession>,
    Path(id): Path<String>,
) -> ApiResult {
    require_login(&s)?;
    Ok(Json(ui.call("stream_buy", vec![json!(id)]).await?))
}

async fn masternodes(State(ui): Shared) -> ApiResult {
    let list = ui
        .call(
            "protx",
            vec![json!("list"), json!("registered"), json!(true)],
        )
        .await?;
    let count = ui.call("masternode", vec![json!("count")]).await?;
    let winners = ui.call("masternode", vec![json!("winners")]).await.ok();
    let quorums = ui.call("quorum", vec![json!("list")]).await.ok();
    let dkg = ui.call("dkginfo", vec![]).await.ok();
    let chainlock = ui.call("getbestchainlock", vec![]).await.ok();
    Ok(Json(json!({
        "list": list,
        "count": count,
        "winners": winners,
        "quorums": quorums,
        "dkg": dkg,
        "chainlock": chainlock,
    })))
}

async fn governance(State(ui): Shared) -> ApiResult {
    let info = ui.call("getgovernanceinfo", vec![]).await?;
    let proposals = ui.call("gov_list", vec![]).await?;
    let treasury = ui.call("gov_treasury", vec![]).await.ok();
    Ok(Json(
        json!({ "info": info, "proposals": proposals, "treasury": treasury }),
    ))
}

#[derive(Deserialize)]
struct Vote {
    proposal: String,
    outcome: String,
}

async fn governance_vote(
    State(ui): Shared,
    Extension(s): Extension<CurrentSession>,
    Json(v): Json<Vote>,
) -> ApiResult {
    require_login(&s)?;
    Ok(Json(
        ui.call("gov_vote", vec![json!(v.proposal), json!(v.outcome)])
            .await?,
    ))
}

async fn wallet(State(ui): Shared, Extension(s): Extension<CurrentSession>) -> ApiResult {
    require_login(&s)?;
    let balances = ui.call("getbalances", vec![]).await?;
    let transactions = ui
        .call("listtransactions", vec![json!("*"), json!(20)])
        .await?;
    Ok(Json(
        json!({ "balances": balances, "transactions": transactions }),
    ))
}

async fn wallet_address(State(ui): Shared, Extension(s): Extension<CurrentSession>) -> ApiResult {
    require_login(&s)?;
    Ok(Json(
        json!({ "address": ui.call("getnewaddress", vec![]).await? }),
    ))
}

#[derive(Deserialize)]
struct Prepare {
    address: String,
    /// Coins, as a decimal string ("1.5").
    amount: String,
}

/// Builds and signs the payment without sending it; answers what the
/// confirmation step shows (amount, fee, address) and its confirmation id.
async fn wallet_prepare(
    State(ui): Shared,
    Extension(s): Extension<CurrentSession>,
    Json(p): Json<Prepare>,
) -> ApiResult {
    require_login(&s)?;
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let address = rusty_shared_types::Address::parse_for(p.address.trim(), ui.ctx.network)
        .map_err(|e| bad(format!("invalid address: {e}")))?;
    let amount = rusty_shared_types::Amount::parse_coins(p.amount.trim())
        .map_err(|_| bad(format!("invalid amount \"{}\"", p.amount)))?;
    let (tx, fee) = crate::rpc::running(
        ui.ctx
            .chain
            .prepare_payment(address, amount, ui.ctx.wallet_fee_rate)
            .await,
    )
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.message().to_owned()))?
    .map_err(|e| bad(e.to_string()))?;
    let fee = fee.units();
    let raw = hex::encode(rusty_shared_types::Encode::encode(&tx));
    let pending = PendingSend::new(raw, address.to_string(), amount.units(), fee);
    let confirmation = ui
        .sessions
        .add_pending(&s.0.id, pending)
        .ok_or_else(|| bad("too many unconfirmed sends; confirm or wait".into()))?;
    Ok(Json(json!({
        "confirmation": confirmation,
        "address": address.to_string(),
        "amount_units": amount.units(),
        "fee_units": fee,
    })))
}

#[derive(Deserialize)]
struct Send {
    confirmation: String,
    /// The password again: a send re-prompts.
    #[serde(default)]
    user: String,
    password: String,
}

/// Sends a prepared payment after the password is given again.
async fn wallet_send(
    State(ui): Shared,
    Extension(s): Extension<CurrentSession>,
    Json(form): Json<Send>,
) -> ApiResult {
    require_login(&s)?;
    check_password(
        &ui,
        &form.user,
        &form.password,
        "wrong password; nothing was sent",
    )
    .await?;
    let pending = ui
        .sessions
        .take_pending(&s.0.id, &form.confirmation)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown or expired confirmation; prepare the send again",
            )
        })?;
    let txid = ui
        .call("sendrawtransaction", vec![json!(pending.raw_tx)])
        .await?;
    Ok(Json(json!({
        "txid": txid,
        "address": pending.address,
        "amount_units": pending.amount_units,
        "fee_units": pending.fee_units,
    })))
}

/// Server-sent events: `block` on every new tip (its header), `mempool`
/// every 2 s (`getmempoolinfo`).
async fn events(State(ui): Shared) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let blocks = ui.ctx.chain.subscribe_blocks();
    let state = (ui, blocks, tokio::time::interval(Duration::from_secs(2)));
    let stream = futures::stream::unfold(state, |(ui, mut blocks, mut tick)| async move {
        let event = tokio::select! {
            tip = blocks.recv() => match tip {
                Ok(tip) => {
                    let header = ui
                        .call("getblockheader", vec![json!(tip.hash.to_string()), json!(true)])
                        .await
                        .unwrap_or(Value::Null);
                    Event::default().event("block").data(header.to_string())
                }
                Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return None,
            },
            _ = tick.tick() => {
                let info = ui.call("getmempoolinfo", vec![]).await.unwrap_or(Value::Null);
                Event::default().event("mempool").data(info.to_string())
            }
        };
        Some((Ok(event), (ui, blocks, tick)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
