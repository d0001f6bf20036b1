//! `rusty-cli masternode …` and `node --masternode`.

use std::process::Command;

use serde_json::Value;

use crate::harness::{free_port, NodeProcess, BIN};

fn public_of(secret_hex: &str) -> String {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(secret_hex.trim(), &mut bytes).expect("secret hex");
    let key = rusty_crypto::bls::SecretKey::from_bytes(&bytes).expect("secret key");
    hex::encode(key.public_key().to_bytes())
}

#[test]
fn genkey_prints_a_key_pair_or_writes_a_private_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genkey = |extra: &[&str]| {
        Command::new(BIN)
            .args(["--dev", "--datadir"])
            .arg(dir.path())
            .args(["masternode", "genkey"])
            .args(extra)
            .output()
            .expect("run rusty-cli")
    };

    // No node needed; JSON {secret, public}, a fresh key every time.
    let out = genkey(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let secret = v["secret"].as_str().expect("secret");
    let public = v["public"].as_str().expect("public");
    assert_eq!(secret.len(), 64);
    assert_eq!(public.len(), 96);
    assert_eq!(public_of(secret), public);
    let again: Value = serde_json::from_slice(&genkey(&[]).stdout).expect("JSON");
    assert_ne!(again["secret"], v["secret"]);

    // --out: the secret in the file (mode 0600), the public key on stdout.
    let path = dir.path().join("operator.key");
    let p = path.to_str().expect("utf-8 path");
    let out = genkey(&["--out", p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(printed.len(), 96, "{printed}");
    let secret = std::fs::read_to_string(&path).expect("key file");
    assert_eq!(secret.trim().len(), 64);
    assert_eq!(public_of(&secret), printed);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Never overwrites a key.
    let out = genkey(&["--out", p]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).expect("key file"), secret);
}

#[test]
fn node_masternode_needs_a_good_operator_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = |extra: &[&str]| {
        Command::new(BIN)
            .args(["--dev", "--datadir"])
            .arg(dir.path())
            .args(["node", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(extra)
            .output()
            .expect("run rusty-cli")
    };

    // A usage error from clap (exit code 2), naming the missing flag.
    let out = node(&["--masternode"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--operator-key"), "{err}");

    // A bad key file: one line naming the file.
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "0123").expect("write");
    let b = bad.to_str().expect("utf-8 path");
    let out = node(&["--masternode", "--operator-key", b]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error:") && err.contains(b), "{err}");
    assert!(err.contains("64 hex characters"), "{err}");
    let missing = dir.path().join("missing.key");
    let m = missing.to_str().expect("utf-8 path");
    let out = node(&["--masternode", "--operator-key", m]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(m));

    // `masternode register` needs one of the key options.
    let out = Command::new(BIN)
        .args([
            "masternode",
            "register",
            "--service",
            "/ip4/127.0.0.1/tcp/1",
        ])
        .output()
        .expect("run rusty-cli");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--operator-pubkey"));
}

/// A dev node run as a masternode: register it from its own wallet, mine
/// the registration, and see it READY.
#[test]
fn register_status_and_list_on_a_running_masternode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("operator.key");
    let k = key.to_str().expect("utf-8 path");
    let out = Command::new(BIN)
        .args(["masternode", "genkey", "--out", k])
        .output()
        .expect("genkey");
    assert!(out.status.success());
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let node = NodeProcess::start(
        dir.path(),
        free_port(),
        &["--no-mine", "--masternode", "--operator-key", k],
    );
    let status = node.json(&["masternode", "status"]);
    assert_eq!(status["state"], "WAITING_FOR_PROTX");
    assert_eq!(status["operatorPubKey"], public.as_str());
    assert!(status.get("proTxHash").is_none(), "{status}");
    let info = node.json(&["rpc", "dkginfo"]);
    assert_eq!(info["masternode"], true);
    assert_eq!(info["eligible"], false);

    node.json(&["mine", "generate", "12"]);
    let net = node.json(&["rpc", "getnetworkinfo"]);
    let service = net["localmultiaddrs"][0]
        .as_str()
        .expect("a local address")
        .to_string();
    let reg = node.json(&[
        "masternode",
        "register",
        "--operator-key",
        k,
        "--service",
        &service,
        "--reward",
        "500",
    ]);
    let pro = reg["proTxHash"].as_str().expect("proTxHash").to_string();
    assert_eq!(pro.len(), 64);
    node.json(&["mine", "generate", "1"]);

    let status = node.json(&["masternode", "status"]);
    assert_eq!(status["state"], "READY", "{status}");
    assert_eq!(status["proTxHash"], pro.as_str());
    assert_eq!(status["service"], service.as_str());
    assert_eq!(status["outpoint"], format!("{pro}-0"));
    assert_eq!(status["dmnState"]["pubKeyOperator"], public.as_str());
    // Dash's masternode list: keyed by the collateral outpoint.
    let list = node.json(&["masternode", "list"]);
    let listed = &list[&format!("{pro}-0")];
    assert_eq!(listed["proTxHash"], pro.as_str(), "{list}");
    assert_eq!(listed["status"], "ENABLED");
    assert_eq!(listed["address"], service.as_str());
    let info = node.json(&["rpc", "protx", "info", &pro]);
    assert_eq!(info["state"]["payoutAddress"], reg["payoutAddress"]);
    assert_eq!(info["state"]["pubKeyOperator"], public.as_str());
    assert_eq!(info["operatorReward"], 5.0);
    assert_eq!(info["wallet"]["hasOperatorKey"], true, "{info}");
    let detailed = node.json(&["rpc", "protx", "list", "registered", "true"]);
    assert_eq!(detailed, serde_json::json!([info]));
    let info = node.json(&["rpc", "dkginfo"]);
    assert_eq!(info["eligible"], true);
    assert_eq!(info["proTxHash"], pro.as_str());

    // The same key cannot register twice.
    let out = node.cli(&[
        "masternode",
        "register",
        "--operator-pubkey",
        &public,
        "--service",
        &service,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already used") && err.contains("-8"), "{err}");
    node.stop();
}
