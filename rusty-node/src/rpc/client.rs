//! A small blocking JSON-RPC client over HTTP/1.1, for `rusty-cli`'s RPC subcommands and for
//! integration tests.
//!
//! One [`RpcClient::call`] is one TCP connection (`Connection: close`): the CLI makes a handful
//! of calls per run, so keeping connections alive is not worth an async runtime or an HTTP
//! library. Replies are read whether the server sends `Content-Length`, chunked transfer
//! encoding or just closes the connection, and both reply shapes are understood: JSON-RPC 2.0
//! (`result` or `error`) and 1.0 (`result` and `error`, one of them `null`), so the client
//! also talks to Bitcoin Core.
//!
//! ```ignore
//! let client = RpcClient::new("http://127.0.0.1:18443")?
//!     .with_cookie_file(cookie_path(&datadir))?;
//! let height = client.call("getblockcount", serde_json::json!([]))?;
//! ```

use std::{
    fmt,
    io::{self, BufRead, BufReader, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use serde_json::Value;

use super::http::{basic_authorization, read_cookie};

/// How long a call may take before the client gives up, as `bitcoin-cli`'s default: long
/// calls such as `generatetoaddress` legitimately take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(900);

/// Longest wait for the TCP connection itself: a node that is up accepts at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest reply body read, so that a misbehaving server cannot exhaust memory.
const MAX_RESPONSE_SIZE: usize = 256 * 1024 * 1024;

/// Largest status line or header line read.
const MAX_LINE: usize = 16 * 1024;

/// Most header lines read in one reply.
const MAX_HEADERS: usize = 128;

/// Ids of successive calls of this process, to tell them apart in the node's logs.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What can go wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be used.
    #[error("invalid RPC URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cookie file could not be read.
    #[error(
        "could not read the RPC cookie file {} ({reason}): pass --datadir to point at the \
         node's data directory, or use --rpc-user/--rpc-password",
        path.display(),
        reason = describe_io(source)
    )]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// Nothing accepted a TCP connection at the URL.
    #[error(
        "could not connect to the node at {url} ({reason}): is `rusty-cli node` running?",
        reason = describe_io(source)
    )]
    Connect {
        /// The node's URL.
        url: String,
        /// Why the connection failed.
        source: io::Error,
    },
    /// The node answered `401`.
    #[error(
        "the node rejected the credentials: check --datadir (cookie) or --rpc-user/--rpc-password"
    )]
    Unauthorized,
    /// The node did not answer in time.
    #[error("the node at {url} did not answer within {} s", timeout.as_secs())]
    Timeout {
        /// The node's URL.
        url: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{message} (RPC error {code})")]
    Rpc {
        /// The JSON-RPC error code (Bitcoin Core's codes where a Bitcoin method exists).
        code: i64,
        /// The error message.
        message: String,
    },
    /// The node answered with an HTTP error that carries no JSON-RPC error.
    #[error("the node answered HTTP {status}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The reply body, as text.
        body: String,
    },
    /// The reply is not valid HTTP or not a JSON-RPC reply.
    #[error("invalid reply from the node: {0}")]
    InvalidResponse(String),
    /// Sending the request or reading the reply failed.
    #[error("I/O error talking to the node: {0}")]
    Io(#[from] io::Error),
}

/// A short lowercase reason for the common I/O errors, to fit inside a sentence.
fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_owned(),
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::AddrNotAvailable => "address not available".to_owned(),
        _ => error.to_string(),
    }
}

/// A node URL, checked and normalised (`http://host:port[/path]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The normalised URL.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Checks a node URL with messages a person can act on (no https, no
/// credentials in the URL, IPv6 in brackets) and normalises it; shared by
/// this client and [`super::remote::Remote`].
pub fn parse_url(url: &str) -> Result<ParsedUrl, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = match url.split_once("://") {
        None => url,
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(invalid(
                "https is not supported: the node serves plain HTTP; reach a remote node \
                 through an SSH tunnel or a TLS-terminating proxy",
            ))
        }
        Some(_) => return Err(invalid("only http:// URLs are supported")),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(invalid(
            "put credentials in --rpc-user/--rpc-password, not in the URL",
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("unclosed '[' in the host"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("junk after ']'"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(invalid(
                    "write IPv6 addresses in brackets: http://[::1]:18443",
                ))
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port = match port {
        None => 80,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(invalid("the port must be a number from 1 to 65535")),
        },
    };
    let shown_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Ok(ParsedUrl {
        url: format!(
            "http://{shown_host}:{port}{}",
            if path == "/" { "" } else { path }
        ),
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// One HTTP reply as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, with any chunked transfer encoding removed.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking JSON-RPC client for one node.
#[derive(Clone)]
pub struct RpcClient {
    /// The URL as normalised for messages: `http://host:port/path`.
    url: String,
    /// Host name or address, without IPv6 brackets.
    host: String,
    port: u16,
    path: String,
    auth: Option<(String, String)>,
    timeout: Duration,
}

impl RpcClient {
    /// A client for the node at `url` (`http://host[:port][/path]`; a missing scheme means
    /// `http`, a missing port 80), without credentials.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let ParsedUrl {
            url,
            host,
            port,
            path,
        } = parse_url(url)?;
        Ok(Self {
            url,
            host,
            port,
            path,
            auth: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Authenticates with `user` and `password` (HTTP Basic).
    #[must_use]
    pub fn with_basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Authenticates with the node's cookie file (`<datadir>/.cookie`).
    pub fn with_cookie_file(self, path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let (user, password) = read_cookie(path).map_err(|source| ClientError::Cookie {
            path: path.to_owned(),
            source,
        })?;
        Ok(self.with_basic_auth(user, password))
    }

    /// Gives up on a call after `timeout` (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The node's URL, normalised.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with `params` (an array or object; `null` means none) and returns its
    /// result.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let params = if params.is_null() {
            Value::Array(Vec::new())
        } else {
            params
        };
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.request(
            "POST",
            Some("application/json"),
            body.to_string().as_bytes(),
        )?;
        if response.status == 401 {
            return Err(ClientError::Unauthorized);
        }
        parse_reply(&response, id)
    }

    /// POSTs `body` as JSON and returns the status and body as they came, for requests
    /// [`call`](Self::call) does not make (batches, legacy 1.0 calls).
    pub fn call_raw(&self, body: &str) -> Result<(u16, String), ClientError> {
        let response = self.request("POST", Some("application/json"), body.as_bytes())?;
        Ok((response.status, response.text()))
    }

    /// One HTTP exchange with this client's credentials; no interpretation of the reply.
    pub fn request(
        &self,
        method: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<RawResponse, ClientError> {
        let stream = self.connect()?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;

        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\
             User-Agent: rusty-rpc-client\r\nContent-Length: {len}\r\n",
            path = self.path,
            port = self.port,
            len = body.len(),
        );
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if let Some((user, password)) = &self.auth {
            head.push_str(&format!(
                "Authorization: {}\r\n",
                basic_authorization(user, password)
            ));
        }
        head.push_str("\r\n");

        let mut writer = &stream;
        let sent = writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(body));
        sent.and_then(|()| writer.flush())
            .map_err(|e| self.io_error(e))?;
        read_response(&mut BufReader::new(&stream)).map_err(|e| match e {
            ClientError::Io(e) => self.io_error(e),
            other => other,
        })
    }

    fn connect(&self) -> Result<TcpStream, ClientError> {
        let connect_error = |source| ClientError::Connect {
            url: self.url.clone(),
            source,
        };
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(connect_error)?;
        let mut last_error = io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} has no address", self.host),
        );
        // `localhost` may resolve to both ::1 and 127.0.0.1 while the node listens on one.
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT.min(self.timeout)) {
                Ok(stream) => return Ok(stream),
                Err(e) => last_error = e,
            }
        }
        Err(connect_error(last_error))
    }

    fn io_error(&self, error: io::Error) -> ClientError {
        match error.kind() {
            // A read timeout shows as `WouldBlock` on Unix and `TimedOut` on Windows.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout {
                url: self.url.clone(),
                timeout: self.timeout,
            },
            _ => ClientError::Io(error),
        }
    }
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never let a password reach a log line through `{:?}`.
        f.debug_struct("RpcClient")
            .field("url", &self.url)
            .field("user", &self.auth.as_ref().map(|(user, _)| user))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Interprets a reply to the call with id `id`, in either JSON-RPC shape.
fn parse_reply(response: &RawResponse, id: u64) -> Result<Value, ClientError> {
    let reply = match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(reply)) => reply,
        // Bitcoin Core answers some errors with HTTP 4xx/5xx and a JSON body, handled below;
        // anything else that is not a JSON-RPC reply is an HTTP-level failure.
        _ if response.status != 200 => {
            return Err(ClientError::Http {
                status: response.status,
                body: response.text(),
            })
        }
        Ok(_) => {
            return Err(ClientError::InvalidResponse(
                "the reply is not a JSON object".into(),
            ))
        }
        Err(e) => {
            return Err(ClientError::InvalidResponse(format!(
                "the reply is not JSON: {e}"
            )))
        }
    };
    match reply.get("error") {
        None | Some(Value::Null) => {}
        Some(error) => {
            let code = error.get("code").and_then(Value::as_i64);
            let message = error.get("message").and_then(Value::as_str);
            return match (code, message) {
                (Some(code), Some(message)) => Err(ClientError::Rpc {
                    code,
                    message: message.to_owned(),
                }),
                _ => Err(ClientError::InvalidResponse(format!(
                    "malformed error object: {error}"
                ))),
            };
        }
    }
    if response.status != 200 {
        return Err(ClientError::Http {
            status: response.status,
            body: response.text(),
        });
    }
    if reply.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(ClientError::InvalidResponse(format!(
            "the reply is for call {}, not {id}",
            reply.get("id").unwrap_or(&Value::Null)
        )));
    }
    reply.get("result").cloned().ok_or_else(|| {
        ClientError::InvalidResponse("the reply has neither result nor error".into())
    })
}

/// Reads one HTTP/1.1 reply: status line, headers and body in whichever framing it comes.
fn read_response(reader: &mut impl BufRead) -> Result<RawResponse, ClientError> {
    let (status, headers) = loop {
        let (status, headers) = read_head(reader)?;
        // Interim replies (100 Continue) precede the real one; 101 is final.
        if !(100..200).contains(&status) || status == 101 {
            break (status, headers);
        }
    };
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };

    // These never have a body, whatever the headers say (RFC 9112 section 6.3).
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|encodings| {
            encodings
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
    if chunked {
        response.body = read_chunked(reader)?;
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length `{length}`")))?;
        if length > MAX_RESPONSE_SIZE {
            return Err(invalid(format!("the reply is too large ({length} bytes)")));
        }
        response.body = vec![0; length];
        reader.read_exact(&mut response.body).map_err(truncated)?;
    } else {
        // No framing: the body runs to the end of the connection.
        reader
            .by_ref()
            .take(MAX_RESPONSE_SIZE as u64 + 1)
            .read_to_end(&mut response.body)?;
        if response.body.len() > MAX_RESPONSE_SIZE {
            return Err(invalid("the reply is too large".to_owned()));
        }
    }
    Ok(response)
}

fn read_head(reader: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), ClientError> {
    let status_line = read_line(reader)?
        .ok_or_else(|| invalid("the node closed the connection without answering".to_owned()))?;
    let mut fields = status_line.splitn(3, ' ');
    let status = match (fields.next(), fields.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid(format!("not an HTTP/1.x status line: {status_line:?}")))?;

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(truncated_reply)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        if headers.len() == MAX_HEADERS {
            return Err(invalid("too many headers".to_owned()));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// Decodes a chunked body (RFC 9112 section 7.1), discarding extensions and trailers.
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(truncated_reply)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line that ends the reply.
            while !read_line(reader)?.ok_or_else(truncated_reply)?.is_empty() {}
            return Ok(body);
        }
        if size > MAX_RESPONSE_SIZE - body.len() {
            return Err(invalid("the reply is too large".to_owned()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).map_err(truncated)?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).map_err(truncated)?;
        if crlf != *b"\r\n" {
            return Err(invalid("chunk longer than its declared size".to_owned()));
        }
    }
}

/// Reads one CRLF- (or LF-) terminated line without its terminator; `None` at a clean end
/// of the connection.
fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, ClientError> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(if line.len() >= MAX_LINE {
            invalid("header line too long".to_owned())
        } else {
            truncated_reply()
        });
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| invalid("header line is not UTF-8".to_owned()))
}

fn invalid(reason: String) -> ClientError {
    ClientError::InvalidResponse(reason)
}

fn truncated_reply() -> ClientError {
    invalid("the connection closed in the middle of the reply".to_owned())
}

fn truncated(error: io::Error) -> ClientError {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => truncated_reply(),
        _ => ClientError::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fs,
        io::{BufRead, BufReader, Write},
        net::TcpListener,
        thread,
    };

    use serde_json::json;

    use super::*;
    use crate::rpc::http::test_server::{TestServer, ALICE_PASSWORD};

    fn cookie_client(server: &TestServer) -> RpcClient {
        let (user, password) = (server.cookie.user(), server.cookie.password());
        RpcClient::new(&server.url())
            .expect("valid URL")
            .with_basic_auth(user, password)
    }

    /// A one-shot server that answers any request with `reply` verbatim.
    fn canned_server(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(&stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("request line");
                if line.trim().is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().expect("length");
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            (&stream).write_all(reply).expect("reply");
        });
        url
    }

    #[test]
    fn parses_urls() {
        let client = RpcClient::new("http://127.0.0.1:18443").expect("valid");
        assert_eq!(
            (client.host.as_str(), client.port, client.path.as_str()),
            ("127.0.0.1", 18443, "/")
        );
        assert_eq!(client.url(), "http://127.0.0.1:18443");

        let client = RpcClient::new("HTTP://node.example:8332/wallet/main").expect("valid");
        assert_eq!((client.host.as_str(), client.port), ("node.example", 8332));
        assert_eq!(client.path, "/wallet/main");
        assert_eq!(client.url(), "http://node.example:8332/wallet/main");

        let client = RpcClient::new("[::1]:18443").expect("valid");
        assert_eq!((client.host.as_str(), client.port), ("::1", 18443));
        assert_eq!(client.url(), "http://[::1]:18443");

        assert_eq!(RpcClient::new("localhost").expect("valid").port, 80);
    }

    #[test]
    fn rejects_unusable_urls() {
        for url in [
            "https://127.0.0.1:18443",
            "ftp://host",
            "http://",
            "http://host:0",
            "http://host:99999",
            "http://host:port",
            "http://::1:18443",
            "http://[::1",
            "http://user:pw@host:1",
        ] {
            let error = RpcClient::new(url).expect_err(url);
            assert!(
                matches!(error, ClientError::InvalidUrl { .. }),
                "{url}: {error}"
            );
        }
        let error = RpcClient::new("https://127.0.0.1:18443").expect_err("https");
        assert!(
            error.to_string().contains("https is not supported"),
            "{error}"
        );
    }

    #[test]
    fn calls_a_method() {
        let server = TestServer::start();
        let client = cookie_client(&server);
        assert_eq!(
            client.call("echo", json!(["hi", 1])).expect("call"),
            json!(["hi", 1])
        );
        assert_eq!(client.call("echo", Value::Null).expect("call"), json!([]));

        let alice = RpcClient::new(&server.url())
            .expect("valid")
            .with_basic_auth("alice", ALICE_PASSWORD);
        assert_eq!(
            alice.call("echo", json!({"a": 1})).expect("call"),
            json!({"a": 1})
        );
    }

    #[test]
    fn rpc_errors_keep_code_and_message() {
        let server = TestServer::start();
        match cookie_client(&server).call("fail", json!([])) {
            Err(ClientError::Rpc { code, message }) => {
                assert_eq!(code, -8);
                assert_eq!(message, "Invalid parameter");
            }
            other => panic!("expected an RPC error, got {other:?}"),
        }
        match cookie_client(&server).call("nosuchmethod", json!([])) {
            Err(ClientError::Rpc { code, .. }) => assert_eq!(code, -32601),
            other => panic!("expected an RPC error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_or_missing_credentials_are_unauthorized() {
        let server = TestServer::start();
        let anonymous = RpcClient::new(&server.url()).expect("valid");
        assert!(matches!(
            anonymous.call("echo", json!([])),
            Err(ClientError::Unauthorized)
        ));
        let wrong = anonymous.clone().with_basic_auth("alice", "guess");
        let error = wrong.call("echo", json!([])).expect_err("refused");
        assert!(matches!(error, ClientError::Unauthorized));
        assert!(error.to_string().contains("--rpc-user"), "{error}");

        let raw = anonymous
            .request("POST", Some("application/json"), b"{}")
            .expect("exchange");
        assert_eq!(raw.status, 401);
        assert_eq!(
            raw.header("WWW-Authenticate"),
            Some(r#"Basic realm="jsonrpc""#)
        );
    }

    #[test]
    fn cookie_file_authenticates() {
        let server = TestServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".cookie");
        fs::write(
            &path,
            format!("{}:{}", server.cookie.user(), server.cookie.password()),
        )
        .expect("write");
        let client = RpcClient::new(&server.url())
            .expect("valid")
            .with_cookie_file(&path)
            .expect("cookie");
        assert_eq!(
            client.call("echo", json!([true])).expect("call"),
            json!([true])
        );
    }

    #[test]
    fn missing_cookie_file_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".cookie");
        let error = RpcClient::new("http://127.0.0.1:1")
            .expect("valid")
            .with_cookie_file(&path)
            .expect_err("no cookie");
        let message = error.to_string();
        assert!(matches!(error, ClientError::Cookie { .. }));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("--datadir") && message.contains("--rpc-user"),
            "{message}"
        );
    }

    #[test]
    fn refused_connection_says_what_to_do() {
        // Bind and drop to find a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let client = RpcClient::new(&format!("http://127.0.0.1:{port}")).expect("valid");
        let error = client.call("echo", json!([])).expect_err("nobody listens");
        assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "could not connect to the node at http://127.0.0.1:{port} (connection refused): \
                 is `rusty-cli node` running?"
            )
        );
    }

    #[test]
    fn call_raw_sends_batches_and_legacy_calls() {
        let server = TestServer::start();
        let client = cookie_client(&server);
        let (status, body) = client
            .call_raw(r#"[{"id":1,"method":"echo","params":[1]},{"jsonrpc":"2.0","id":2,"method":"echo","params":[2]}]"#)
            .expect("batch");
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("JSON"),
            json!([{"result": [1], "error": null, "id": 1}, {"jsonrpc": "2.0", "id": 2, "result": [2]}])
        );
    }

    #[test]
    fn reads_chunked_replies() {
        let url = canned_server(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
              7;ext=1\r\n{\"resul\r\n\
              1a\r\nt\":42,\"error\":null,\"id\":1}\r\n\
              0\r\nX-Trailer: yes\r\n\r\n",
        );
        let client = RpcClient::new(&url).expect("valid");
        let raw = client.request("POST", None, b"{}").expect("exchange");
        assert_eq!(raw.text(), r#"{"result":42,"error":null,"id":1}"#);
    }

    #[test]
    fn chunk_longer_than_declared_is_invalid() {
        let url = canned_server(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        );
        let error = RpcClient::new(&url)
            .expect("valid")
            .request("POST", None, b"{}")
            .expect_err("bad chunk");
        assert!(
            matches!(error, ClientError::InvalidResponse(_)),
            "{error:?}"
        );
    }

    #[test]
    fn reads_replies_without_length_until_close() {
        let url = canned_server(b"HTTP/1.0 200 OK\r\n\r\n{\"result\":1}");
        let raw = RpcClient::new(&url)
            .expect("valid")
            .request("POST", None, b"{}")
            .expect("exchange");
        assert_eq!((raw.status, raw.text().as_str()), (200, r#"{"result":1}"#));
    }

    #[test]
    fn understands_bitcoin_core_error_replies() {
        // Bitcoin Core answers a legacy call's error with HTTP 500 and a 1.0 body.
        let url = canned_server(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 72\r\n\r\n\
              {\"result\":null,\"error\":{\"code\":-8,\"message\":\"Invalid parameter\"},\"id\":1}",
        );
        let error = RpcClient::new(&url)
            .expect("valid")
            .call("x", json!([]))
            .expect_err("error");
        assert!(
            matches!(error, ClientError::Rpc { code: -8, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn http_errors_without_json_are_reported_as_such() {
        let url =
            canned_server(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
        let error = RpcClient::new(&url)
            .expect("valid")
            .call("x", json!([]))
            .expect_err("error");
        assert!(
            matches!(error, ClientError::Http { status: 503, ref body } if body == "busy"),
            "{error:?}"
        );
    }

    #[test]
    fn truncated_and_garbage_replies_are_invalid() {
        let url = canned_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"res");
        let error = RpcClient::new(&url)
            .expect("valid")
            .call("x", json!([]))
            .expect_err("short");
        assert!(
            matches!(error, ClientError::InvalidResponse(_)),
            "{error:?}"
        );

        let url = canned_server(b"SSH-2.0-OpenSSH_9.6\r\n");
        let error = RpcClient::new(&url)
            .expect("valid")
            .call("x", json!([]))
            .expect_err("not HTTP");
        assert!(
            matches!(error, ClientError::InvalidResponse(_)),
            "{error:?}"
        );
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let client = RpcClient::new(&url)
            .expect("valid")
            .with_timeout(Duration::from_millis(200));
        let error = client.call("x", json!([])).expect_err("timeout");
        assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
        drop(listener);
    }
}
