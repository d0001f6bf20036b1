//! Tests of the HTTP front over a real jsonrpsee server on loopback.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::json;

use super::{
    legacy::{is_legacy, LegacyRequest},
    test_server::*,
    *,
};

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

    // Exactly Core's header: python-bitcoinrpc compares the string.
    let auth = server.cookie_authorization();
    let (_, headers, _) = exchange(&server, "POST", &[("Authorization", auth.as_str())], CALL);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
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
    // Core's statuses for legacy errors: 500, and 404 for an unknown method.
    let (status, reply) = post_json(&server, r#"{"id":"e","method":"fail","params":[]}"#);
    assert_eq!(status, 500);
    assert_eq!(
        reply,
        json!({"result": null, "error": {"code": -8, "message": "Invalid parameter"}, "id": "e"})
    );

    let (status, reply) = post_json(&server, r#"{"id":3,"method":"nosuchmethod"}"#);
    assert_eq!(status, 404);
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
    let (status, reply) = post_json(&server, r#"{"jsonrpc":"1.1","id":1,"method":"echo"}"#);
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], json!(-32600));
    assert_eq!(reply["id"], json!(1));
    let (status, reply) = post_json(&server, r#"{"jsonrpc":2,"id":1,"method":"echo"}"#);
    assert_eq!(status, 400);
    assert_eq!(
        reply["error"]["message"],
        json!("jsonrpc field must be a string")
    );
}

#[test]
fn json_rpc_2_errors_are_200_and_notifications_204() {
    let server = TestServer::start();
    let (status, reply) = post_json(
        &server,
        r#"{"jsonrpc":"2.0","id":1,"method":"nosuchmethod","params":[]}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(reply["error"]["code"], json!(-32601));
    assert!(reply.get("result").is_none(), "2.0 errors carry no result");

    let auth = server.cookie_authorization();
    let (status, _, body) = exchange(
        &server,
        "POST",
        &[("Authorization", auth.as_str())],
        r#"{"jsonrpc":"2.0","method":"echo","params":[1]}"#,
    );
    assert_eq!(status, 204);
    assert_eq!(body, "");
}

#[test]
fn body_that_is_not_json_is_a_parse_error() {
    let server = TestServer::start();
    // Core answers these itself, legacy-shaped, with 500.
    for body in [
        "this is not json",
        r#"{"id":1,"method":"echo""#,
        "[1,",
        "42",
    ] {
        let (status, reply) = post_json(&server, body);
        assert_eq!(status, 500, "{body}");
        assert_eq!(reply["error"]["code"], json!(-32700), "{body}");
        assert_eq!(reply["result"], Value::Null, "{body}");
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

/// The legacy rewriter reads untrusted request bodies and the reply path
/// trusts nothing either: neither may panic, whatever arrives.
mod properties {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::super::legacy::LegacyRequest;

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
