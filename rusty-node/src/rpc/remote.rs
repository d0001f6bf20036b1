//! `rusty-cli`'s connection to a node: the generated clients of
//! [`super::api`] (`…ApiClient` traits) over jsonrpsee's HTTP client, with
//! bitcoin-cli's credentials (the cookie in the datadir, or a user and
//! password), its 15-minute timeout, and errors a person can act on
//! ([`ClientError`], shared with the raw test client in [`super::client`]).
//!
//! The CLI is synchronous: a [`Remote`] owns a small current-thread runtime
//! and [`Remote::run`] drives one call on it.
//!
//! ```ignore
//! let node = Remote::connect("http://127.0.0.1:28432", Credentials::Cookie(path))?;
//! let height = node.run(node.api().get_block_count())?;
//! ```

use std::{future::Future, path::PathBuf, time::Duration};

use jsonrpsee::{
    core::{client::ClientT, params::ArrayParams, ClientError as JsonRpcError},
    http_client::{transport, HeaderMap, HeaderValue, HttpClient, HttpClientBuilder},
};
use serde_json::Value;

use super::{
    client::{parse_url, ClientError, DEFAULT_TIMEOUT},
    http::{basic_authorization, read_cookie},
};

/// Largest reply accepted, as the raw client's.
const MAX_RESPONSE_SIZE: u32 = 256 * 1024 * 1024;

/// How the CLI proves it may use the node.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `--rpc-user` and `--rpc-password`.
    UserPassword(String, String),
    /// The node's cookie file (`<datadir>/<network>/.cookie`).
    Cookie(PathBuf),
}

/// A node reached over JSON-RPC.
#[derive(Debug)]
pub struct Remote {
    client: HttpClient,
    url: String,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// A connection to the node at `url` (`http://host[:port][/path]`).
    /// Nothing is sent yet; a node that is down shows on the first call.
    pub fn connect(url: &str, credentials: Credentials) -> Result<Remote, ClientError> {
        let parsed = parse_url(url)?;
        let (user, password) = match credentials {
            Credentials::UserPassword(u, p) => (u, p),
            Credentials::Cookie(path) => {
                read_cookie(&path).map_err(|source| ClientError::Cookie { path, source })?
            }
        };
        let mut headers = HeaderMap::new();
        let auth = HeaderValue::from_str(&basic_authorization(&user, &password)).map_err(|_| {
            ClientError::InvalidResponse("credentials are not valid header text".into())
        })?;
        headers.insert("authorization", auth);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = {
            let _inside = runtime.enter();
            HttpClientBuilder::default()
                .set_headers(headers)
                .request_timeout(DEFAULT_TIMEOUT)
                .max_response_size(MAX_RESPONSE_SIZE)
                .build(&parsed.url)
                .map_err(|e| ClientError::InvalidUrl {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?
        };
        Ok(Remote {
            client,
            url: parsed.url,
            timeout: DEFAULT_TIMEOUT,
            runtime,
        })
    }

    /// The generated clients: `remote.api().get_block_count()` and so on
    /// (bring the `…ApiClient` trait into scope).
    pub fn api(&self) -> &HttpClient {
        &self.client
    }

    /// The node's URL, normalised.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one call of a generated client to completion.
    pub fn run<T>(
        &self,
        call: impl Future<Output = Result<T, JsonRpcError>>,
    ) -> Result<T, ClientError> {
        self.runtime.block_on(call).map_err(|e| self.describe(e))
    }

    /// [`Remote::run`] from async code running on another runtime (the
    /// CLI's playback server).
    pub async fn run_async<T>(
        &self,
        call: impl Future<Output = Result<T, JsonRpcError>>,
    ) -> Result<T, ClientError> {
        call.await.map_err(|e| self.describe(e))
    }

    /// Calls any method by name with positional parameters (`rusty-cli rpc
    /// <method> [params…]`, which takes methods this build may not know).
    pub fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, ClientError> {
        self.runtime.block_on(self.call_async(method, params))
    }

    /// [`Remote::call`] from async code running on another runtime (the
    /// CLI's playback server).
    pub async fn call_async(&self, method: &str, params: Vec<Value>) -> Result<Value, ClientError> {
        let mut array = ArrayParams::new();
        for p in params {
            array
                .insert(p)
                .map_err(|e| ClientError::InvalidResponse(e.to_string()))?;
        }
        self.client
            .request::<Value, _>(method, array)
            .await
            .map_err(|e| self.describe(e))
    }

    /// The error a person can act on.
    fn describe(&self, e: JsonRpcError) -> ClientError {
        match e {
            JsonRpcError::Call(err) => ClientError::Rpc {
                code: i64::from(err.code()),
                message: err.message().to_owned(),
            },
            JsonRpcError::RequestTimeout => ClientError::Timeout {
                url: self.url.clone(),
                timeout: self.timeout,
            },
            JsonRpcError::Transport(t) => match t.downcast_ref::<transport::Error>() {
                Some(transport::Error::Rejected { status_code: 401 }) => ClientError::Unauthorized,
                Some(transport::Error::Rejected { status_code }) => ClientError::Http {
                    status: *status_code,
                    body: String::new(),
                },
                _ => ClientError::Connect {
                    url: self.url.clone(),
                    source: std::io::Error::new(connect_error_kind(&*t), chain(&*t)),
                },
            },
            other => ClientError::InvalidResponse(other.to_string()),
        }
    }
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The kind of the I/O error under a transport failure (connection
/// refused, timed out), for the same wording as the raw client.
fn connect_error_kind(e: &(dyn std::error::Error + 'static)) -> std::io::ErrorKind {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.kind();
        }
        source = err.source();
    }
    std::io::ErrorKind::Other
}
