//! The web UI, served by the node on `--ui-bind` (off by default): an
//! explorer, a media catalog and player, masternode and governance views,
//! and a wallet, as plain ES modules embedded in the binary
//! (`rusty-node/ui/`), over a JSON façade `/api/v1/*` that calls the very
//! JSON-RPC handlers the RPC server runs ([`api`]), live updates by
//! server-sent events, and playback bytes straight from the media store
//! ([`playback`]). `docs/ui.md` is the user's page, with the security model.
//!
//! Built on axum (hyper 1 and tower, as jsonrpsee). Every request passes
//! [`guard`]:
//!
//! * `Host` must be one of the allowed names (the bind address, `localhost`,
//!   `127.0.0.1`, `[::1]` with the port, plus `--ui-allow-host`): a DNS
//!   rebinding page cannot talk to the node under its own name;
//! * a POST needs an `Origin` equal to `http://<Host>` and the session's
//!   CSRF token in `X-CSRF-Token`; nothing changes state on GET;
//! * every answer carries CSP `default-src 'self'` (plus `blob:` media for
//!   the HLS player), `nosniff`, `Referrer-Policy: no-referrer` and
//!   `frame-ancestors 'none'`.
//!
//! Wallet, votes and purchases need an authenticated session
//! ([`session`]): logged in with the RPC cookie or the RPC password.

pub mod api;
pub mod assets;
pub mod playback;
pub mod session;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use jsonrpsee::Methods;
use serde_json::json;
use tokio::net::TcpListener;

use crate::rpc::{http::RpcAuth, RpcContext};

/// The UI's settings (`--ui-bind`, `--ui-allow-host`).
#[derive(Debug, Clone)]
pub struct UiConfig {
    pub bind: SocketAddr,
    /// Extra `Host` names (with port) accepted besides the bind address and
    /// the loopback names.
    pub allow_hosts: Vec<String>,
}

/// Why the UI did not start.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(
        "refusing to serve the web UI on the non-loopback address {0} without an RPC password: \
         set --rpc-user and --rpc-password (the login of the UI), or bind to 127.0.0.1"
    )]
    PublicWithoutPassword(SocketAddr),
    #[error("binding the web UI to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "binding playback (--playback-bind) to {addr}: {source}; give another address, or `off`"
    )]
    PlaybackBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every handler reaches.
pub struct Ui {
    /// The JSON-RPC methods, called in-process.
    pub rpc: Methods,
    pub ctx: Arc<RpcContext>,
    pub auth: RpcAuth,
    pub sessions: session::Sessions,
    allowed_hosts: Vec<String>,
    /// One UTXO-set scan (address page) at a time.
    pub scans: tokio::sync::Semaphore,
}

impl Ui {
    fn new(
        rpc: Methods,
        ctx: Arc<RpcContext>,
        auth: RpcAuth,
        allowed_hosts: Vec<String>,
    ) -> Arc<Ui> {
        Arc::new(Ui {
            rpc,
            ctx,
            auth,
            sessions: session::Sessions::default(),
            allowed_hosts,
            scans: tokio::sync::Semaphore::new(1),
        })
    }
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

/// The `Host` values a UI bound to `bind` answers to.
pub fn allowed_hosts(bind: SocketAddr, extra: &[String]) -> Vec<String> {
    let port = bind.port();
    let mut hosts = vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        bind.to_string(),
    ];
    hosts.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Binds the UI; refuses a non-loopback address unless an RPC password is
/// configured (`password_set`).
pub async fn bind(
    config: &UiConfig,
    password_set: bool,
) -> Result<(TcpListener, SocketAddr), UiError> {
    if !config.bind.ip().is_loopback() && !password_set {
        return Err(UiError::PublicWithoutPassword(config.bind));
    }
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| UiError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| UiError::Bind {
        addr: config.bind,
        source,
    })?;
    Ok((listener, addr))
}

/// Serves the UI on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: &UiConfig,
    rpc: Methods,
    ctx: Arc<RpcContext>,
    auth: RpcAuth,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let ui = Ui::new(rpc, ctx, auth, allowed_hosts(bound, &config.allow_hosts));
    let app = api::router()
        .merge(playback::router())
        .merge(assets::router());
    serve_app(listener, ui, app, shutdown).await
}

/// Where a node without the web UI serves playback (`--playback-bind`):
/// the UI's playback routes alone ([`playback`]: files with `Range`, HLS),
/// so that a player, or `rusty-cli stream view --serve` (which redirects
/// players here), reads media bytes from the node as they are, never
/// through JSON-RPC. With `--ui-bind` the UI serves them instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlaybackBind {
    /// 127.0.0.1, on a port the system picks (`stream_view` names it).
    #[default]
    Loopback,
    /// Here. The routes read only content the node already holds, and
    /// need no login (as on the UI): bind beyond loopback only to play on
    /// another machine of a network you trust.
    At(SocketAddr),
    Off,
}

impl PlaybackBind {
    pub fn address(self) -> Option<SocketAddr> {
        match self {
            PlaybackBind::Loopback => Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            PlaybackBind::At(addr) => Some(addr),
            PlaybackBind::Off => None,
        }
    }
}

impl std::str::FromStr for PlaybackBind {
    type Err = String;

    fn from_str(s: &str) -> Result<PlaybackBind, String> {
        match s {
            "off" => Ok(PlaybackBind::Off),
            "auto" => Ok(PlaybackBind::Loopback),
            _ => s.parse().map(PlaybackBind::At).map_err(|_| {
                format!("`{s}`: expected an address with a port (127.0.0.1:8090), `auto` or `off`")
            }),
        }
    }
}

/// Serves the playback routes alone on `listener` (see [`PlaybackBind`])
/// until `shutdown` resolves.
pub async fn serve_playback(
    listener: TcpListener,
    ctx: Arc<RpcContext>,
    auth: RpcAuth,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let ui = Ui::new(Methods::new(), ctx, auth, allowed_hosts(bound, &[]));
    serve_app(listener, ui, playback::router(), shutdown).await
}

/// `app` behind [`guard`] on `listener`.
async fn serve_app(
    listener: TcpListener,
    ui: Arc<Ui>,
    app: axum::Router<Arc<Ui>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app
        .layer(axum::middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A JSON error answer: `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

const CSP: &str = "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The session cookie of a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == session::COOKIE).then_some(v)
        })
}

/// `Set-Cookie` for session `id`.
pub fn set_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict",
        session::COOKIE
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The request's session, put into its extensions by [`guard`].
#[derive(Debug, Clone)]
pub struct CurrentSession(pub session::SessionView);

/// Host allow-list, CSRF and Origin on POST, sessions, security headers.
async fn guard(State(ui): State<Arc<Ui>>, mut req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let host = match host {
        Some(h) if ui.allowed_hosts.contains(&h) => h,
        _ => return harden(error(StatusCode::FORBIDDEN, "this Host is not allowed")),
    };
    let is_api = req.uri().path().starts_with("/api/");
    let mut created = None;
    if is_api {
        let view = ui.sessions.touch(session_cookie(req.headers()));
        if view.created {
            created = Some(view.id.clone());
        }
        if req.method() == Method::POST {
            let origin_ok = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .is_some_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
            if !origin_ok {
                return harden(error(
                    StatusCode::FORBIDDEN,
                    "a POST needs an Origin header naming this server",
                ));
            }
            let csrf_ok = req
                .headers()
                .get("x-csrf-token")
                .is_some_and(|t| session::constant_time_eq(t.as_bytes(), view.csrf.as_bytes()));
            if !csrf_ok || view.created {
                return harden(with_cookie(
                    error(
                        StatusCode::FORBIDDEN,
                        "missing or wrong CSRF token (reload the page)",
                    ),
                    created.as_deref(),
                ));
            }
        } else if req.method() != Method::GET && req.method() != Method::HEAD {
            return harden(error(StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD or POST"));
        }
        req.extensions_mut().insert(CurrentSession(view));
    }
    let response = next.run(req).await;
    harden(with_cookie(response, created.as_deref()))
}

fn with_cookie(mut response: Response, id: Option<&str>) -> Response {
    if let Some(id) = id {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(id));
    }
    response
}

fn harden(mut response: Response<Body>) -> Response<Body> {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_hosts_are_the_bind_address_and_loopback_names() {
        let hosts = allowed_hosts("127.0.0.1:8080".parse().unwrap(), &["Node.Lan:8080".into()]);
        assert!(hosts.contains(&"localhost:8080".to_string()));
        assert!(hosts.contains(&"127.0.0.1:8080".to_string()));
        assert!(hosts.contains(&"node.lan:8080".to_string()));
        assert!(!hosts.contains(&"evil.example:8080".to_string()));
        assert!(!hosts.contains(&"localhost:80".to_string()));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; rusty_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    proptest::proptest! {
        /// Any `Cookie` header: no panic, and a session cookie among other
        /// cookies is found.
        #[test]
        fn any_cookie_header_is_parsed_without_panic(
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            id in "[0-9a-f]{64}",
            before in "[a-z]{1,8}=[a-z0-9]{0,8}",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&raw) {
                h.insert(header::COOKIE, v);
                let _ = session_cookie(&h);
            }
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(&format!("{before}; rusty_session={id}")).unwrap());
            proptest::prop_assert_eq!(session_cookie(&h), Some(id.as_str()));
        }
    }

    #[tokio::test]
    async fn a_public_bind_without_a_password_is_refused() {
        let config = UiConfig {
            bind: "0.0.0.0:0".parse().unwrap(),
            allow_hosts: Vec::new(),
        };
        assert!(matches!(
            bind(&config, false).await,
            Err(UiError::PublicWithoutPassword(_))
        ));
    }

    #[test]
    fn playback_bind_parses_auto_off_and_addresses() {
        let parse = |s: &str| s.parse::<PlaybackBind>();
        assert_eq!(parse("auto"), Ok(PlaybackBind::Loopback));
        assert_eq!(parse("off"), Ok(PlaybackBind::Off));
        let at: SocketAddr = "0.0.0.0:8090".parse().expect("address");
        assert_eq!(parse("0.0.0.0:8090"), Ok(PlaybackBind::At(at)));
        assert!(parse("8090").is_err_and(|e| e.contains("`auto` or `off`")));
        assert!(PlaybackBind::Loopback
            .address()
            .is_some_and(|a| a.ip().is_loopback() && a.port() == 0));
        assert_eq!(PlaybackBind::Off.address(), None);
    }
}
