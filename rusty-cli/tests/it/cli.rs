//! Client subcommands and their errors.

use serde_json::Value;

use crate::harness::{free_port, NodeProcess, BIN};

#[test]
fn wallet_mine_and_rpc_subcommands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(dir.path(), free_port(), &["--no-mine"]);
    let hashes = node.json(&["mine", "generate", "12"]);
    assert_eq!(hashes.as_array().map(Vec::len), Some(12));
    assert_eq!(node.height(), 12);

    let addr = node.json(&["wallet", "address"]);
    let addr = addr.as_str().expect("address");
    assert!(addr.starts_with("drsc1"), "{addr}");
    let valid = node.json(&["rpc", "validateaddress", addr]);
    assert_eq!(valid["isvalid"], Value::Bool(true));

    let balance = node.json(&["wallet", "balance"]);
    // Three mature coinbases of 45 RSC (the subsidy less the treasury share).
    assert_eq!(balance["mine"]["trusted"].as_f64(), Some(135.0));

    let txid = node.json(&["wallet", "send", addr, "1.25"]);
    assert_eq!(txid.as_str().map(str::len), Some(64));
    let list = node.json(&["wallet", "list", "--count", "50"]);
    assert!(!list.as_array().expect("list").is_empty());

    // Errors: one line on stderr, non-zero exit, no panic.
    let out = node.cli(&["rpc", "getblockhash", "999"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("out of range") && err.contains("-8"), "{err}");

    let out = node.cli(&["rpc", "nosuchmethod"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-32601"));

    let out = node.cli(&["wallet", "send", "notanaddress", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid address"));

    node.stop();
    // The cookie is removed on a clean stop.
    assert!(!dir.path().join("dev").join(".cookie").exists());
}

#[test]
fn client_without_a_node_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(BIN)
        .args(["--dev", "--datadir"])
        .arg(dir.path())
        .args(["rpc", "getblockcount"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error:"), "{err}");
    assert!(err.contains(".cookie"), "{err}");

    let out = std::process::Command::new(BIN)
        .args(["--network", "moon", "rpc", "getblockcount"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("moon"));
}

/// `rusty-cli localnet` on free ports: both nodes answer at the printed
/// URLs with the printed cookies, connect to each other, and SIGTERM stops
/// the whole process cleanly.
#[test]
fn localnet_runs_connected_nodes_until_sigterm() {
    use std::{
        process::Command,
        time::{Duration, Instant},
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, rx) = crate::harness::spawn_localnet(
        dir.path(),
        &["--nodes", "2", "--miners", "0", "--base-port", "0"],
    );
    // node<i>  <network>  <url>  cookie <path>  peer <id>
    let mut nodes = Vec::new();
    while nodes.len() < 2 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("localnet prints a line per node within 60 s");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 7, "{line}");
        assert_eq!(words[0], format!("node{}", nodes.len()), "{line}");
        assert_eq!(words[1], "dev", "{line}");
        assert!(words[2].starts_with("http://127.0.0.1:"), "{line}");
        assert!(words[6].starts_with("12D3Koo"), "{line}");
        nodes.push((words[2].to_owned(), words[4].to_owned()));
    }
    let rpc = |i: usize, method: &str| -> Value {
        let (url, cookie) = &nodes[i];
        assert!(std::path::Path::new(cookie).exists(), "{cookie}");
        let out = Command::new(BIN)
            .args(["--dev", "--datadir"])
            .arg(dir.path().join(format!("node{i}")))
            .args(["--rpc-url", url, "rpc", method])
            .output()
            .expect("run rusty-cli");
        assert!(
            out.status.success(),
            "{method} on node {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..2 {
        assert_eq!(rpc(i, "getblockcount"), Value::from(0));
        while rpc(i, "getconnectioncount") != 1 {
            assert!(Instant::now() < deadline, "node {i} has no peer after 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("localnet did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    for (_, cookie) in &nodes {
        assert!(
            !std::path::Path::new(cookie).exists(),
            "{cookie} left behind"
        );
    }
}
