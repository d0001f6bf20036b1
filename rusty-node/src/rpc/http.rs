//! The HTTP front of the JSON-RPC server: authentication and Bitcoin Core compatibility.
//!
//! jsonrpsee serves JSON-RPC 2.0 over HTTP and WebSocket on one port. [`RpcHttpLayer`] is a
//! tower layer for jsonrpsee's `set_http_middleware` that adds what jsonrpsee leaves to us:
//!
//! * **HTTP Basic authentication** of every request (WebSocket upgrades included) against an
//!   [`RpcAuth`] set: normally the random cookie the node writes to `<datadir>/.cookie` at
//!   startup ([`write_cookie`]) plus an optional configured user and password. A missing or
//!   wrong `Authorization` header gets `401` with `WWW-Authenticate: Basic realm="jsonrpc"` and
//!   an empty body, and a wrong one is answered only after [`AUTH_FAILURE_DELAY`], both as
//!   Bitcoin Core does.
//! * **Legacy JSON-RPC 1.0**, so that Bitcoin RPC client libraries and the `curl` lines of
//!   Bitcoin's documentation work unmodified. A POSTed object without a `"jsonrpc"` member (or
//!   with `"jsonrpc": "1.0"`) is rewritten to 2.0 before jsonrpsee sees it and its reply is
//!   rewritten back to `{"result": …, "error": …, "id": …}`. Batches are handled element by
//!   element; JSON-RPC 2.0 requests pass through byte for byte.
//!
//! Everything that is not a POST (WebSocket upgrades, `GET`) goes to jsonrpsee untouched once
//! authenticated.
//!
//! ```ignore
//! let auth = RpcAuth::new().with(write_cookie(&datadir)?);
//! let server = jsonrpsee::server::Server::builder()
//!     .max_request_body_size(DEFAULT_MAX_BODY_SIZE as u32)
//!     .set_http_middleware(tower::ServiceBuilder::new().layer(RpcHttpLayer::new(auth)))
//!     .build("127.0.0.1:18443")
//!     .await?;
//! let handle = server.start(module);
//! // … on shutdown:
//! remove_cookie(&datadir)?;
//! ```

use std::{
    fmt, fs,
    future::Future,
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use jsonrpsee::{
    core::BoxError,
    server::{HttpBody, HttpRequest, HttpResponse},
    types::error::{OVERSIZED_REQUEST_CODE, OVERSIZED_REQUEST_MSG},
};
use rand::{rngs::OsRng, RngCore};
use serde_json::Value;
use tower::{Layer, Service};

use self::legacy::{is_notification, parse_error_body, unsupported_version, LegacyRequest};

mod legacy;

/// Tracing target of this module.
const LOG_TARGET: &str = "rpc::http";

/// User name of the cookie credentials, the same as Bitcoin Core's.
pub const COOKIE_USER: &str = "__cookie__";

/// Name of the cookie file inside the datadir.
pub const COOKIE_FILE_NAME: &str = ".cookie";

/// Largest request body the layer buffers; larger requests get `413`.
///
/// Configure jsonrpsee's `max_request_body_size` to the same value, or it will refuse
/// requests this layer accepted.
pub const DEFAULT_MAX_BODY_SIZE: usize = 16 * 1024 * 1024;

/// How long a request with wrong credentials waits for its `401`.
///
/// Bitcoin Core does the same to slow down password guessing over one connection.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(250);

/// Value of the `WWW-Authenticate` header sent with every `401`.
const WWW_AUTHENTICATE: &str = "Basic realm=\"jsonrpc\"";

/// Random bytes in a cookie password (hex-encoded into twice as many characters).
const COOKIE_SECRET_LEN: usize = 32;

/// Why a user name and password cannot be accepted as RPC credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The user name is empty.
    #[error("the RPC user name must not be empty")]
    EmptyUser,
    /// The user name contains `:`, which HTTP Basic auth uses to separate it from the password.
    #[error("the RPC user name must not contain ':'")]
    UserContainsColon,
    /// The password is empty.
    #[error("the RPC password must not be empty")]
    EmptyPassword,
}

/// One user name and password the server accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcCredentials {
    user: String,
    password: String,
}

impl RpcCredentials {
    /// Credentials for a configured user (`--rpc-user`/`--rpc-password`).
    pub fn new(
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, CredentialsError> {
        let (user, password) = (user.into(), password.into());
        if user.is_empty() {
            return Err(CredentialsError::EmptyUser);
        }
        if user.contains(':') {
            return Err(CredentialsError::UserContainsColon);
        }
        if password.is_empty() {
            return Err(CredentialsError::EmptyPassword);
        }
        Ok(Self { user, password })
    }

    /// Cookie credentials: the user [`COOKIE_USER`] with the given secret.
    fn cookie(password: String) -> Self {
        Self {
            user: COOKIE_USER.to_owned(),
            password,
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The value of an `Authorization` header carrying these credentials.
    pub fn authorization_header(&self) -> String {
        basic_authorization(&self.user, &self.password)
    }
}

impl fmt::Debug for RpcCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never let a password reach a log line through `{:?}`.
        f.debug_struct("RpcCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The value of an HTTP Basic `Authorization` header for `user` and `password`.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// The set of credentials the server accepts: typically the cookie and, for remote access,
/// a configured user.
///
/// An empty set accepts nobody.
#[derive(Clone, Default)]
pub struct RpcAuth {
    accepted: Vec<AcceptedCredentials>,
}

/// A stored credential: only a digest of `user:password` is kept, so that checking a request
/// compares fixed-size digests in constant time and leaks neither content nor length.
#[derive(Clone)]
struct AcceptedCredentials {
    user: String,
    digest: blake3::Hash,
}

impl RpcAuth {
    /// An empty set, which accepts nobody until credentials are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `credentials` to the set (builder style).
    #[must_use]
    pub fn with(mut self, credentials: RpcCredentials) -> Self {
        self.add(credentials);
        self
    }

    /// Adds `credentials` to the set.
    pub fn add(&mut self, credentials: RpcCredentials) {
        let digest =
            blake3::hash(format!("{}:{}", credentials.user, credentials.password).as_bytes());
        self.accepted.push(AcceptedCredentials {
            user: credentials.user,
            digest,
        });
    }

    /// Whether the set is empty (and so accepts nobody).
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }

    /// Checks the value of an `Authorization` header; returns the authenticated user.
    pub fn verify_header(&self, authorization: &[u8]) -> Option<&str> {
        let (scheme, encoded) = authorization.split_at_checked(6)?;
        // RFC 7617: the scheme name is case-insensitive.
        if !scheme.eq_ignore_ascii_case(b"basic ") {
            return None;
        }
        let decoded = BASE64.decode(encoded.trim_ascii()).ok()?;
        self.verify_user_password(&decoded)
    }

    /// Checks `user:password` (the web UI's login form; the RPC cookie's
    /// user is `__cookie__`); returns the authenticated user.
    pub fn verify_credentials(&self, user: &str, password: &str) -> Option<&str> {
        self.verify_user_password(format!("{user}:{password}").as_bytes())
    }

    fn verify_user_password(&self, user_colon_password: &[u8]) -> Option<&str> {
        let digest = blake3::hash(user_colon_password);
        // `blake3::Hash` compares in constant time; look at every entry so the time taken
        // does not depend on which one matched.
        let mut user = None;
        for accepted in &self.accepted {
            if accepted.digest == digest && user.is_none() {
                user = Some(accepted.user.as_str());
            }
        }
        user
    }
}

impl fmt::Debug for RpcAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcAuth")
            .field(
                "users",
                &self
                    .accepted
                    .iter()
                    .map(|a| a.user.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Path of the cookie file in `datadir`.
pub fn cookie_path(datadir: &Path) -> PathBuf {
    datadir.join(COOKIE_FILE_NAME)
}

/// Writes a fresh random cookie to `<datadir>/.cookie` and returns its credentials.
///
/// The file holds `__cookie__:<64 hex digits>` and is readable by its owner only, so that
/// whoever can read the datadir can use the RPC and nobody else can. It is written to a
/// temporary file and renamed into place so a client never reads half a cookie.
pub fn write_cookie(datadir: &Path) -> io::Result<RpcCredentials> {
    let mut secret = [0u8; COOKIE_SECRET_LEN];
    OsRng.fill_bytes(&mut secret);
    let credentials = RpcCredentials::cookie(hex::encode(secret));

    let path = cookie_path(datadir);
    let cookie = format!("{}:{}", credentials.user, credentials.password);
    rusty_crypto::keystore::write_private(&path, cookie.as_bytes())?;
    tracing::debug!(target: LOG_TARGET, path = %path.display(), "wrote RPC cookie");
    Ok(credentials)
}

/// Deletes `<datadir>/.cookie` on shutdown; a cookie that is already gone is not an error.
pub fn remove_cookie(datadir: &Path) -> io::Result<()> {
    remove_if_exists(&cookie_path(datadir))
}

/// Reads a cookie file (`user:password`) written by [`write_cookie`].
pub fn read_cookie(path: &Path) -> io::Result<(String, String)> {
    let content = fs::read_to_string(path)?;
    // Tolerate a trailing newline from hand-written files.
    match content.trim_end().split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            Ok((user.to_owned(), password.to_owned()))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not a cookie file: expected `user:password`",
                path.display()
            ),
        )),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Tower layer for jsonrpsee's `set_http_middleware`: authentication and legacy JSON-RPC 1.0.
///
/// See the [module documentation](self) for what it does and how to install it.
#[derive(Clone, Debug)]
pub struct RpcHttpLayer {
    auth: Arc<RpcAuth>,
    max_body_size: usize,
}

impl RpcHttpLayer {
    /// A layer accepting `auth`, buffering at most [`DEFAULT_MAX_BODY_SIZE`] per request.
    pub fn new(auth: RpcAuth) -> Self {
        Self {
            auth: Arc::new(auth),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        }
    }

    /// Sets the largest request body accepted, in bytes.
    #[must_use]
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }
}

impl<S> Layer<S> for RpcHttpLayer {
    type Service = RpcHttpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcHttpService {
            inner,
            auth: Arc::clone(&self.auth),
            max_body_size: self.max_body_size,
        }
    }
}

/// The service built by [`RpcHttpLayer`] around jsonrpsee's own.
#[derive(Clone, Debug)]
pub struct RpcHttpService<S> {
    inner: S,
    auth: Arc<RpcAuth>,
    max_body_size: usize,
}

impl<S> Service<HttpRequest> for RpcHttpService<S>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        // The usual tower dance: `self.inner` is the clone `poll_ready` readied, so that is
        // the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let auth = Arc::clone(&self.auth);
        let max_body_size = self.max_body_size;
        Box::pin(async move {
            if let Err(denied) = authenticate(&auth, &request) {
                if denied == Denied::WrongCredentials {
                    tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                }
                return Ok(unauthorized());
            }
            if request.method().as_str() == "POST" {
                serve_post(inner, request, max_body_size).await
            } else {
                // WebSocket upgrades and anything else are jsonrpsee's business.
                let mut inner = inner;
                inner.call(request).await
            }
        })
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denied {
    /// No `Authorization` header at all: a client that has not tried yet.
    MissingCredentials,
    /// Credentials that match nobody: possibly someone guessing.
    WrongCredentials,
}

fn authenticate(auth: &RpcAuth, request: &HttpRequest) -> Result<(), Denied> {
    let Some(header) = request.headers().get("authorization") else {
        tracing::debug!(
            target: LOG_TARGET,
            method = %request.method(),
            uri = %request.uri(),
            "RPC request without credentials"
        );
        return Err(Denied::MissingCredentials);
    };
    match auth.verify_header(header.as_bytes()) {
        Some(user) => {
            tracing::trace!(target: LOG_TARGET, user, method = %request.method(), "authenticated");
            Ok(())
        }
        None => {
            tracing::warn!(
                target: LOG_TARGET,
                method = %request.method(),
                uri = %request.uri(),
                "incorrect RPC credentials"
            );
            Err(Denied::WrongCredentials)
        }
    }
}

/// Buffers a POST body, rewrites it if it holds legacy requests, and
/// rewrites the reply back, with Bitcoin Core's status codes and headers.
async fn serve_post<S>(
    mut inner: S,
    request: HttpRequest,
    max_body_size: usize,
) -> Result<HttpResponse, BoxError>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = BoxError>,
{
    let (mut parts, body) = request.into_parts();
    let declared_len = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > max_body_size as u64) {
        return Ok(too_large(max_body_size));
    }
    let body = match Limited::new(body, max_body_size).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Ok(too_large(max_body_size)),
        // The client went away mid-body; nobody is left to answer.
        Err(e) => return Err(e),
    };

    // Bitcoin Core ignores Content-Type: its documented `curl` lines send
    // `text/plain`, and plain `curl --data-binary` sends a form type. jsonrpsee
    // would refuse both with 415, so every POST is presented as JSON.
    if let Ok(json) = JSON_CONTENT_TYPE.parse() {
        parts.headers.insert("content-type", json);
    }

    // Core answers what it cannot parse itself, legacy-shaped, with 500.
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        Ok(_) => {
            return Ok(json_response(
                500,
                parse_error_body("Top-level object parse error"),
            ))
        }
        Err(_) => return Ok(json_response(500, parse_error_body("Parse error"))),
    };

    if let Some(refused) = unsupported_version(&value) {
        return Ok(json_response(400, refused));
    }

    let notification = is_notification(&value);
    let Some(legacy) = LegacyRequest::from_value(value) else {
        // JSON-RPC 2.0: jsonrpsee gets exactly what was sent; errors are
        // 200 with the error in the body, as Core 28+ answers 2.0 calls.
        let response = inner
            .call(HttpRequest::from_parts(
                parts,
                HttpBody::new(Full::new(body)),
            ))
            .await?;
        if notification && response.status().is_success() {
            return Ok(no_content());
        }
        return Ok(with_json_content_type(response));
    };

    parts.headers.remove("content-length");
    let LegacyRequest {
        body: rewritten,
        shape,
    } = legacy;
    let response = inner
        .call(HttpRequest::from_parts(parts, HttpBody::from(rewritten)))
        .await?;

    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let response = match shape.rewrite_reply(&body) {
        Some((reply, status)) => {
            parts.headers.remove("content-length");
            if let Ok(status) = status.try_into() {
                parts.status = status;
            }
            HttpResponse::from_parts(parts, HttpBody::from(reply))
        }
        None => HttpResponse::from_parts(parts, HttpBody::new(Full::new(body))),
    };
    Ok(with_json_content_type(response))
}

/// Bitcoin Core's `Content-Type` for every JSON reply, exactly: some client
/// libraries (python-bitcoinrpc's `AuthServiceProxy`) compare the string,
/// so jsonrpsee's `application/json; charset=utf-8` fails them.
const JSON_CONTENT_TYPE: &str = "application/json";

fn with_json_content_type(mut response: HttpResponse) -> HttpResponse {
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        if let Ok(json) = JSON_CONTENT_TYPE.parse() {
            response.headers_mut().insert("content-type", json);
        }
    }
    response
}

fn json_response(status: u16, body: String) -> HttpResponse {
    HttpResponse::builder()
        .status(status)
        .header("content-type", JSON_CONTENT_TYPE)
        .body(HttpBody::from(body))
        .expect("a valid status and a static header always build a response")
}

/// A notification's answer, as Core's: nothing.
fn no_content() -> HttpResponse {
    HttpResponse::builder()
        .status(204)
        .body(HttpBody::empty())
        .expect("a static status always builds a response")
}

fn unauthorized() -> HttpResponse {
    HttpResponse::builder()
        .status(401)
        .header("www-authenticate", WWW_AUTHENTICATE)
        .body(HttpBody::empty())
        .expect("a static status and header always build a response")
}

fn too_large(limit: usize) -> HttpResponse {
    // Same body as jsonrpsee's own 413, so clients see one error whichever limit they hit.
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": {
            "code": OVERSIZED_REQUEST_CODE,
            "message": OVERSIZED_REQUEST_MSG,
            "data": format!("Exceeded max limit of {limit}"),
        },
        "id": null,
    });
    HttpResponse::builder()
        .status(413)
        .header("content-type", JSON_CONTENT_TYPE)
        .body(HttpBody::from(body.to_string()))
        .expect("a static status and header always build a response")
}

/// A real jsonrpsee server behind [`RpcHttpLayer`], for the tests of this module and of the
/// client.
#[cfg(test)]
pub(crate) mod test_server {
    use std::net::SocketAddr;

    use jsonrpsee::{
        server::{Server, ServerHandle},
        types::ErrorObjectOwned,
        RpcModule,
    };

    use super::*;

    /// The password of the configured (non-cookie) test user `alice`.
    pub(crate) const ALICE_PASSWORD: &str = "correct horse battery staple";

    /// A running server with methods `echo` (returns its params) and `fail` (error -8).
    pub(crate) struct TestServer {
        pub(crate) addr: SocketAddr,
        pub(crate) cookie: RpcCredentials,
        _datadir: tempfile::TempDir,
        handle: ServerHandle,
        runtime: tokio::runtime::Runtime,
    }

    impl TestServer {
        pub(crate) fn start() -> Self {
            Self::start_with(|layer| layer)
        }

        /// Starts a server whose layer is first adjusted by `configure`.
        pub(crate) fn start_with(configure: impl FnOnce(RpcHttpLayer) -> RpcHttpLayer) -> Self {
            let datadir = tempfile::tempdir().expect("temporary datadir");
            let cookie = write_cookie(datadir.path()).expect("cookie written");
            let alice = RpcCredentials::new("alice", ALICE_PASSWORD).expect("valid credentials");
            let layer = configure(RpcHttpLayer::new(
                RpcAuth::new().with(cookie.clone()).with(alice),
            ));

            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let (addr, handle) = runtime.block_on(async move {
                let mut module = RpcModule::new(());
                module
                    .register_method("echo", |params, _, _| params.parse::<Value>())
                    .expect("echo registers");
                module
                    .register_method("fail", |_, _, _| {
                        Err::<(), _>(ErrorObjectOwned::owned(-8, "Invalid parameter", None::<()>))
                    })
                    .expect("fail registers");
                let server = Server::builder()
                    .max_request_body_size(DEFAULT_MAX_BODY_SIZE as u32)
                    .set_http_middleware(tower::ServiceBuilder::new().layer(layer))
                    .build("127.0.0.1:0")
                    .await
                    .expect("server binds");
                let addr = server.local_addr().expect("bound address");
                (addr, server.start(module))
            });
            Self {
                addr,
                cookie,
                _datadir: datadir,
                handle,
                runtime,
            }
        }

        pub(crate) fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        pub(crate) fn cookie_authorization(&self) -> String {
            self.cookie.authorization_header()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            if self.handle.stop().is_ok() {
                let handle = self.handle.clone();
                self.runtime.block_on(handle.stopped());
            }
        }
    }
}

#[cfg(test)]
mod tests;
