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
    assert_eq!(balance["mine"]["trusted"].as_f64(), Some(150.0));

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
