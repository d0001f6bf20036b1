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
    collections::HashMap,
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
use serde_json::{Map, Value};
use tower::{Layer, Service};

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
        let digest = blake3::hash(&decoded);
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

/// Buffers a POST body, rewrites it if it holds legacy requests, and rewrites the reply back.
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
    if let Ok(json) = "application/json".parse() {
        parts.headers.insert("content-type", json);
    }

    let Some(legacy) = LegacyRequest::rewrite(&body) else {
        // JSON-RPC 2.0 or not JSON at all: jsonrpsee gets exactly what was sent, and answers
        // parse errors itself.
        return inner
            .call(HttpRequest::from_parts(
                parts,
                HttpBody::new(Full::new(body)),
            ))
            .await;
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
    match shape.rewrite_reply(&body) {
        Some(reply) => {
            parts.headers.remove("content-length");
            Ok(HttpResponse::from_parts(parts, HttpBody::from(reply)))
        }
        None => Ok(HttpResponse::from_parts(
            parts,
            HttpBody::new(Full::new(body)),
        )),
    }
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
        .header("content-type", "application/json; charset=utf-8")
        .body(HttpBody::from(body.to_string()))
        .expect("a static status and header always build a response")
}

/// A request body that held legacy JSON-RPC 1.0 calls, rewritten to 2.0 for jsonrpsee.
///
/// Every legacy call gets a fresh id that names it uniquely, because the ids clients send
/// cannot be trusted for that: 1.0 clients often send `null` or reuse one id throughout, and
/// jsonrpsee would treat an id-less call as a notification and not answer it at all.
#[derive(Debug)]
struct LegacyRequest {
    /// The rewritten body to hand to jsonrpsee.
    body: Vec<u8>,
    shape: LegacyShape,
}

#[derive(Debug)]
enum LegacyShape {
    /// One legacy call; its reply goes back with this id.
    Single { original_id: Value },
    /// A batch with legacy elements: their replies are found by the ids given to them.
    Batch {
        original_ids: HashMap<String, Value>,
    },
}

impl LegacyRequest {
    /// Rewrites `body` if it holds at least one legacy call; `None` leaves it to jsonrpsee.
    fn rewrite(body: &[u8]) -> Option<Self> {
        let mut value: Value = serde_json::from_slice(body).ok()?;
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
    /// Rewrites jsonrpsee's reply into the shapes the calls were made in; `None` if the reply
    /// is not what a JSON-RPC reply to this request looks like, which then goes out as is.
    fn rewrite_reply(&self, reply: &[u8]) -> Option<Vec<u8>> {
        let reply: Value = serde_json::from_slice(reply).ok()?;
        match (self, reply) {
            // A single call's reply belongs to it whatever id it carries (a parse error, say).
            (LegacyShape::Single { original_id }, Value::Object(reply)) => {
                Some(legacy_reply(&reply, original_id).into_bytes())
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
                Some(format!("[{}]", elements.join(",")).into_bytes())
            }
            // A batch refused as a whole (too many calls, say) is answered by one 2.0 error.
            _ => None,
        }
    }
}

/// Whether a call is legacy JSON-RPC 1.0, which Bitcoin Core recognises by a missing
/// `jsonrpc` member or by `"jsonrpc": "1.0"`. Any other version is left for jsonrpsee to
/// refuse as an invalid request, as Bitcoin Core refuses it.
fn is_legacy(call: &Map<String, Value>) -> bool {
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
mod tests {
    use std::{
        io::{BufRead, BufReader, Read, Write},
        net::TcpStream,
        time::Duration,
    };

    use serde_json::json;

    use super::{test_server::*, *};

    /// One raw HTTP/1.1 exchange, so that the tests see exactly what goes over the wire.
    fn exchange(
        server: &TestServer,
        method: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut request = format!(
            "{method} / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            server.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).expect("send");

        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        let mut body = String::new();
        reader.read_to_string(&mut body).expect("body");
        (status, headers, body)
    }

    fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
        let mut line = String::new();
        reader.read_line(&mut line).expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("header line");
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        (status, headers)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// POSTs `body` as JSON with the cookie; returns the status and the parsed reply.
    fn post_json(server: &TestServer, body: &str) -> (u16, Value) {
        let auth = server.cookie_authorization();
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", auth.as_str()),
        ];
        let (status, _, reply) = exchange(server, "POST", &headers, body);
        (status, serde_json::from_str(&reply).expect("reply is JSON"))
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":["hi"]}"#;

    #[test]
    fn missing_credentials_get_401_with_challenge() {
        let server = TestServer::start();
        let (status, headers, body) = exchange(
            &server,
            "POST",
            &[("Content-Type", "application/json")],
            CALL,
        );
        assert_eq!(status, 401);
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some(r#"Basic realm="jsonrpc""#)
        );
        assert_eq!(body, "");
    }

    #[test]
    fn wrong_credentials_get_401() {
        let server = TestServer::start();
        for authorization in [
            basic_authorization(COOKIE_USER, "0000"),
            basic_authorization("alice", "wrong"),
            basic_authorization("mallory", ALICE_PASSWORD),
            "Basic !!!not-base64".to_owned(),
            "Bearer abc".to_owned(),
        ] {
            let headers = [
                ("Content-Type", "application/json"),
                ("Authorization", authorization.as_str()),
            ];
            let (status, headers, body) = exchange(&server, "POST", &headers, CALL);
            assert_eq!(status, 401, "{authorization}");
            assert_eq!(
                header(&headers, "www-authenticate"),
                Some(r#"Basic realm="jsonrpc""#)
            );
            assert_eq!(body, "");
        }
    }

    #[test]
    fn configured_user_is_accepted_alongside_the_cookie() {
        let server = TestServer::start();
        let auth = basic_authorization("alice", ALICE_PASSWORD);
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", auth.as_str()),
        ];
        let (status, _, body) = exchange(&server, "POST", &headers, CALL);
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("JSON")["result"],
            json!(["hi"])
        );
    }

    #[test]
    fn json_rpc_2_passes_through() {
        let server = TestServer::start();
        let (status, reply) = post_json(&server, CALL);
        assert_eq!(status, 200);
        assert_eq!(reply, json!({"jsonrpc": "2.0", "id": 1, "result": ["hi"]}));

        let (_, reply) = post_json(
            &server,
            r#"{"jsonrpc":"2.0","id":"x","method":"fail","params":[]}"#,
        );
        assert_eq!(
            reply,
            json!({"jsonrpc": "2.0", "id": "x", "error": {"code": -8, "message": "Invalid parameter"}})
        );
    }

    #[test]
    fn legacy_call_is_answered_in_1_0_shape() {
        let server = TestServer::start();
        let auth = server.cookie_authorization();
        // Bitcoin Core's documented curl line, content type included.
        let headers = [
            ("Content-Type", "text/plain;"),
            ("Authorization", auth.as_str()),
        ];
        let (status, _, body) = exchange(
            &server,
            "POST",
            &headers,
            r#"{"jsonrpc": "1.0", "id": "curltest", "method": "echo", "params": ["hi"]}"#,
        );
        assert_eq!(status, 200);
        assert_eq!(body, r#"{"result":["hi"],"error":null,"id":"curltest"}"#);

        let (_, reply) = post_json(&server, r#"{"id":7,"method":"echo","params":[1,2]}"#);
        assert_eq!(reply, json!({"result": [1, 2], "error": null, "id": 7}));
    }

    #[test]
    fn legacy_error_is_answered_in_1_0_shape() {
        let server = TestServer::start();
        let (_, reply) = post_json(&server, r#"{"id":"e","method":"fail","params":[]}"#);
        assert_eq!(
            reply,
            json!({"result": null, "error": {"code": -8, "message": "Invalid parameter"}, "id": "e"})
        );

        let (_, reply) = post_json(&server, r#"{"id":3,"method":"nosuchmethod"}"#);
        assert_eq!(reply["result"], Value::Null);
        assert_eq!(reply["error"]["code"], json!(-32601));
        assert_eq!(reply["id"], json!(3));
    }

    #[test]
    fn legacy_call_without_id_or_params_is_still_answered() {
        let server = TestServer::start();
        let (_, reply) = post_json(&server, r#"{"method":"echo"}"#);
        assert_eq!(reply, json!({"result": [], "error": null, "id": null}));

        let (_, reply) = post_json(&server, r#"{"method":"echo","params":null,"id":null}"#);
        assert_eq!(reply, json!({"result": [], "error": null, "id": null}));
    }

    #[test]
    fn mixed_batch_gets_each_reply_in_its_requests_shape() {
        let server = TestServer::start();
        // Both calls use id 1: replies must be told apart by more than the client's ids.
        let (status, reply) = post_json(
            &server,
            r#"[
                {"id":1,"method":"echo","params":["legacy"]},
                {"jsonrpc":"2.0","id":1,"method":"echo","params":["modern"]},
                {"jsonrpc":"1.0","id":2,"method":"fail","params":[]},
                {"jsonrpc":"2.0","method":"echo","params":["notification"]}
            ]"#,
        );
        assert_eq!(status, 200);
        assert_eq!(
            reply,
            json!([
                {"result": ["legacy"], "error": null, "id": 1},
                {"jsonrpc": "2.0", "id": 1, "result": ["modern"]},
                {"result": null, "error": {"code": -8, "message": "Invalid parameter"}, "id": 2},
            ])
        );
    }

    #[test]
    fn json_rpc_2_batch_passes_through() {
        let server = TestServer::start();
        let (_, reply) = post_json(
            &server,
            r#"[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},
                {"jsonrpc":"2.0","id":2,"method":"echo","params":[2]}]"#,
        );
        assert_eq!(
            reply,
            json!([
                {"jsonrpc": "2.0", "id": 1, "result": [1]},
                {"jsonrpc": "2.0", "id": 2, "result": [2]},
            ])
        );
    }

    #[test]
    fn unsupported_version_is_an_invalid_request() {
        let server = TestServer::start();
        let (_, reply) = post_json(&server, r#"{"jsonrpc":"1.1","id":1,"method":"echo"}"#);
        assert_eq!(reply["error"]["code"], json!(-32600));
    }

    #[test]
    fn body_that_is_not_json_is_a_parse_error() {
        let server = TestServer::start();
        for body in ["this is not json", r#"{"id":1,"method":"echo""#, "[1,"] {
            // jsonrpsee answers 400 when the body does not even start like JSON, 200 otherwise.
            let (_, reply) = post_json(&server, body);
            assert_eq!(reply["error"]["code"], json!(-32700), "{body}");
            assert_eq!(reply["id"], Value::Null, "{body}");
        }
    }

    #[test]
    fn oversized_body_gets_413() {
        let server = TestServer::start_with(|layer| layer.max_body_size(64));
        let big = format!(
            r#"{{"id":1,"method":"echo","params":["{}"]}}"#,
            "x".repeat(100)
        );
        let (status, reply) = post_json(&server, &big);
        assert_eq!(status, 413);
        assert_eq!(reply["error"]["code"], json!(OVERSIZED_REQUEST_CODE));
    }

    #[test]
    fn non_post_requests_reach_jsonrpsee_after_auth() {
        let server = TestServer::start();
        let (status, _, _) = exchange(&server, "GET", &[], "");
        assert_eq!(status, 401);
        let auth = server.cookie_authorization();
        let (status, _, _) = exchange(&server, "GET", &[("Authorization", auth.as_str())], "");
        assert_eq!(status, 405, "jsonrpsee answers a plain GET itself");
    }

    #[test]
    fn websocket_upgrade_is_authenticated_and_then_untouched() {
        let server = TestServer::start();
        let upgrade = |authorization: Option<&str>| {
            let mut stream = TcpStream::connect(server.addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut request = format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
                server.addr
            );
            if let Some(authorization) = authorization {
                request.push_str(&format!("Authorization: {authorization}\r\n"));
            }
            request.push_str("\r\n");
            stream.write_all(request.as_bytes()).expect("send");
            read_head(&mut BufReader::new(stream))
        };
        assert_eq!(upgrade(None).0, 401);
        let (status, headers) = upgrade(Some(&server.cookie_authorization()));
        assert_eq!(status, 101);
        assert_eq!(
            header(&headers, "upgrade")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("websocket")
        );
    }

    #[test]
    fn cookie_round_trip() {
        let datadir = tempfile::tempdir().expect("tempdir");
        let credentials = write_cookie(datadir.path()).expect("write");
        let path = cookie_path(datadir.path());

        let content = fs::read_to_string(&path).expect("read");
        let (user, password) = content.split_once(':').expect("user:password");
        assert_eq!(user, COOKIE_USER);
        assert_eq!(password.len(), 2 * COOKIE_SECRET_LEN);
        assert!(password.bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            read_cookie(&path).expect("read_cookie"),
            (
                credentials.user().to_owned(),
                credentials.password().to_owned()
            )
        );

        // A restart replaces the cookie.
        let again = write_cookie(datadir.path()).expect("rewrite");
        assert_ne!(again.password(), credentials.password());

        remove_cookie(datadir.path()).expect("remove");
        assert!(!path.exists());
        remove_cookie(datadir.path()).expect("removing twice is fine");
        assert_eq!(
            read_cookie(&path).map_err(|e| e.kind()),
            Err(io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn malformed_cookie_is_invalid_data() {
        let datadir = tempfile::tempdir().expect("tempdir");
        let path = cookie_path(datadir.path());
        for content in ["", "no-colon", ":password", "user:"] {
            fs::write(&path, content).expect("write");
            assert_eq!(
                read_cookie(&path).map_err(|e| e.kind()),
                Err(io::ErrorKind::InvalidData)
            );
        }
        fs::write(&path, "__cookie__:abcd\n").expect("write");
        assert_eq!(
            read_cookie(&path).expect("read"),
            ("__cookie__".to_owned(), "abcd".to_owned())
        );
    }

    #[test]
    fn verify_header_accepts_exactly_the_configured_pairs() {
        let auth = RpcAuth::new()
            .with(RpcCredentials::new("alice", "pw").expect("valid"))
            .with(RpcCredentials::new("bob", "pw2").expect("valid"));
        assert_eq!(
            auth.verify_header(basic_authorization("alice", "pw").as_bytes()),
            Some("alice")
        );
        assert_eq!(
            auth.verify_header(basic_authorization("bob", "pw2").as_bytes()),
            Some("bob")
        );
        let lower = format!("basic {}", BASE64.encode("bob:pw2"));
        assert_eq!(auth.verify_header(lower.as_bytes()), Some("bob"));
        assert_eq!(
            auth.verify_header(basic_authorization("alice", "pw2").as_bytes()),
            None
        );
        assert_eq!(auth.verify_header(b"Basic"), None);
        assert_eq!(auth.verify_header(b""), None);
        assert_eq!(
            RpcAuth::new().verify_header(basic_authorization("a", "b").as_bytes()),
            None
        );
    }

    #[test]
    fn credentials_are_validated_and_redacted() {
        assert_eq!(
            RpcCredentials::new("", "pw"),
            Err(CredentialsError::EmptyUser)
        );
        assert_eq!(
            RpcCredentials::new("a:b", "pw"),
            Err(CredentialsError::UserContainsColon)
        );
        assert_eq!(
            RpcCredentials::new("a", ""),
            Err(CredentialsError::EmptyPassword)
        );
        let credentials = RpcCredentials::new("alice", "hunter2").expect("valid");
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn legacy_detection() {
        let legacy = |call: Value| match call {
            Value::Object(call) => is_legacy(&call),
            _ => unreachable!(),
        };
        assert!(legacy(json!({"method": "x"})));
        assert!(legacy(json!({"jsonrpc": "1.0", "method": "x"})));
        assert!(!legacy(json!({"jsonrpc": "2.0", "method": "x"})));
        assert!(!legacy(json!({"jsonrpc": "1.1", "method": "x"})));
        assert!(!legacy(json!({"jsonrpc": 1, "method": "x"})));
        assert!(LegacyRequest::rewrite(CALL.as_bytes()).is_none());
        assert!(LegacyRequest::rewrite(b"[]").is_none());
        assert!(LegacyRequest::rewrite(b"not json").is_none());
    }
}

/// The legacy rewriter reads untrusted request bodies and the reply path
/// trusts nothing either: neither may panic, whatever arrives.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::LegacyRequest;

    /// Arbitrary JSON values, nested a few levels.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z0-9\\.]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    "(jsonrpc|method|params|id|[a-z]{1,5})",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300),
                                    reply in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(req) = LegacyRequest::rewrite(&body) {
                let _ = req.shape.rewrite_reply(&reply);
            }
        }

        #[test]
        fn random_json_never_panics(body in json_value(), reply in json_value()) {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            if let Some(req) = LegacyRequest::rewrite(&bytes) {
                // The rewritten body is valid JSON.
                prop_assert!(serde_json::from_slice::<Value>(&req.body).is_ok());
                let reply = serde_json::to_vec(&reply).unwrap_or_default();
                let _ = req.shape.rewrite_reply(&reply);
            }
        }
    }
}
