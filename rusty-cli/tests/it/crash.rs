//! `kill -9` while the node writes blocks, then restart: the database
//! reopens at a consistent tip without repair, at or above the last tip seen,
//! and the wallet agrees with the chain.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{free_port, NodeProcess};

fn total_wallet(node: &NodeProcess) -> f64 {
    let b = node.json(&["wallet", "balance"]);
    b["mine"]["trusted"].as_f64().expect("trusted")
        + b["mine"]["immature"].as_f64().expect("immature")
}

/// Height and wallet total read at the same tip (the miner keeps going, so
/// retry until no block arrived between the two reads).
fn height_and_total(node: &NodeProcess) -> (u64, f64) {
    loop {
        let before = node.height();
        let total = total_wallet(node);
        if node.height() == before {
            return (before, total);
        }
    }
}

#[test]
fn kill_9_while_mining_then_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut seen_height = 0;
    let mut seen_tip = Value::Null;
    for round in 0..3 {
        let node = NodeProcess::start(dir.path(), port, &["--mine"]);
        let h = node.height();
        assert!(
            h >= seen_height,
            "round {round}: height went back from {seen_height} to {h}"
        );
        if seen_height > 0 {
            // The block we saw at that height is still there.
            let again = node.json(&["rpc", "getblockhash", &seen_height.to_string()]);
            assert_eq!(again, seen_tip, "round {round}");
        }
        // Every block paid this wallet 50 RSC: balances match the chain.
        let (at, total) = height_and_total(&node);
        assert_eq!(total, 45.0 * at as f64, "round {round}");

        seen_height = h;
        seen_tip = node.json(&["rpc", "getblockhash", &h.to_string()]);
        eprintln!("round {round}: restarted at height {h}");

        // Write a burst of blocks and kill the process in the middle of it.
        let datadir = node.datadir.clone();
        let burst = std::thread::spawn(move || {
            let _ = std::process::Command::new(crate::harness::BIN)
                .args(["--dev", "--datadir"])
                .arg(&datadir)
                .args([
                    "--rpc-url",
                    &format!("http://127.0.0.1:{port}"),
                    "mine",
                    "generate",
                    "5000",
                ])
                .output();
        });
        // No RPC now (a query would wait behind the generate job): kill at
        // an arbitrary moment of the burst.
        std::thread::sleep(Duration::from_millis(150 + 150 * round));
        node.kill9();
        let _ = burst.join();
    }
    let node = NodeProcess::start(dir.path(), port, &["--no-mine"]);
    assert!(node.height() >= seen_height);
    // Every block of the active chain is readable.
    let h = node.height();
    for height in [0, h / 2, h] {
        let hash = node.json(&["rpc", "getblockhash", &height.to_string()]);
        let block = node.json(&["rpc", "getblock", hash.as_str().expect("hash")]);
        assert_eq!(block["height"].as_u64(), Some(height));
    }
    assert_eq!(total_wallet(&node), 45.0 * h as f64);
    node.stop();
}

/// Waits until `node` reports `height` with the tip `tip`.
fn wait_for_tip(node: &NodeProcess, height: u64, tip: &Value) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if node.height() == height && node.json(&["rpc", "getbestblockhash"]) == *tip {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node stuck at height {} (want {height})",
            node.height()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_killed_with_9_rejoins_from_its_peer_store_and_catches_up() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (rpc_a, rpc_b) = (free_port(), free_port());
    let (p2p_a, p2p_b) = (free_port(), free_port());
    let listen = |p: u16| format!("/ip4/127.0.0.1/tcp/{p}");
    let (la, lb) = (listen(p2p_a), listen(p2p_b));
    let a = NodeProcess::start_raw(
        dir_a.path(),
        rpc_a,
        &["--no-mine", "--no-mdns", "--listen", &la],
    );
    let start_b = |bootnode: Option<&str>| {
        let mut args = vec!["--no-mine", "--no-mdns", "--listen", &lb];
        if let Some(b) = bootnode {
            args.extend(["--bootnode", b]);
        }
        NodeProcess::start_raw(dir_b.path(), rpc_b, &args)
    };
    let b = start_b(Some(&la));
    a.json(&["mine", "generate", "50"]);
    let tip = a.json(&["rpc", "getbestblockhash"]);
    wait_for_tip(&b, 50, &tip);
    // Long enough for the peer store to be written after the connection.
    std::thread::sleep(Duration::from_secs(4));
    b.kill9();

    a.json(&["mine", "generate", "100"]);
    let tip = a.json(&["rpc", "getbestblockhash"]);
    // No bootnode this time: the peer store knows node A.
    let b = start_b(None);
    wait_for_tip(&b, 150, &tip);
    b.stop();
    a.stop();
}

/// Governance through the CLI on a node process, then `kill -9` mid-cycle
/// (votes and a proposal since the last flush): the restarted node has the
/// same tally, treasury and values, and pays the proposal at the
/// superblock.
#[test]
fn governance_survives_kill_9_mid_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let key = dir.path().join("operator.key");
    let k = key.to_str().expect("utf-8 path");
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["masternode", "genkey", "--out", k])
        .output()
        .expect("genkey");
    assert!(out.status.success());
    let node = NodeProcess::start(dir.path(), port, &["--no-mine"]);
    node.json(&["mine", "generate", "12"]);
    let service = node.json(&["rpc", "getnetworkinfo"])["localmultiaddrs"][0]
        .as_str()
        .expect("a local address")
        .to_string();
    node.json(&[
        "masternode",
        "register",
        "--operator-key",
        k,
        "--service",
        &service,
    ]);
    node.json(&["mine", "generate", "1"]);
    let payee = node.json(&["wallet", "address"]);
    let payee = payee.as_str().expect("address");
    let out = node.cli(&[
        "gov",
        "submit",
        "--payment",
        "--payee",
        payee,
        "--amount",
        "3",
        "--title",
        "Crash test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(hash.len(), 64, "{hash}");
    node.json(&["mine", "generate", "1"]);
    let voted = node.json(&["gov", "vote", &hash, "yes"]);
    assert!(voted[0]["txid"].is_string(), "{voted}");
    node.json(&["mine", "generate", "2"]);
    let shown = node.json(&["gov", "show", &hash]);
    assert_eq!(shown["yes"], 1, "{shown}");
    assert_eq!(shown["passing"], true);
    let treasury = node.json(&["gov", "treasury"]);
    let params = node.json(&["gov", "params"]);
    let listed = node.json(&["gov", "list", "--state", "passing"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    node.kill9();
    let node = NodeProcess::start(dir.path(), port, &["--no-mine"]);
    assert_eq!(node.json(&["gov", "show", &hash]), shown);
    assert_eq!(node.json(&["gov", "treasury"]), treasury);
    assert_eq!(node.json(&["gov", "params"]), params);

    // Through the superblock (48 on dev): paid once, from the treasury.
    let h = node.height();
    node.json(&["mine", "generate", &(48 - h).to_string()]);
    let after = node.json(&["gov", "treasury"]);
    let accrued = 49.0 * 5.0; // heights 0..=48, 10% of 50 RSC each
    assert_eq!(after["balance"].as_f64(), Some(accrued - 3.0), "{after}");
    assert_eq!(node.json(&["gov", "list"]), serde_json::json!([]));
    node.stop();
}

/// Found by `rusty-cli chaos`: a node whose disk fills up stops with one
/// clear line and a non-zero exit, instead of running on with a database
/// that takes no more writes; once space is free it restarts on its own
/// data at the height it had. Needs a tmpfs (root); skipped otherwise.
#[test]
fn a_full_disk_stops_the_node_and_it_restarts_once_space_is_free() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mount)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let port = free_port();
    // The log goes outside the small disk, so that it can be read.
    let log = dir.path().join("node.log");
    let mut child = Command::new(crate::harness::BIN)
        .args(["--dev", "--datadir"])
        .arg(&mount)
        .args(["node", "--no-network", "--no-mine", "--rpc-bind"])
        .arg(format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn node");
    let cli = |args: &[&str]| {
        Command::new(crate::harness::BIN)
            .args(["--dev", "--datadir"])
            .arg(&mount)
            .args(["--rpc-url", &format!("http://127.0.0.1:{port}")])
            .args(args)
            .output()
            .expect("run rusty-cli")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !cli(&["rpc", "getblockcount"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "no RPC within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cli(&["mine", "generate", "20"]).status.success());
    // Mine to an address asked for now: a new one would need a wallet
    // write, which the full disk refuses with its own clear error.
    let address = String::from_utf8_lossy(&cli(&["rpc", "getnewaddress"]).stdout)
        .trim()
        .to_string();
    // Fill the disk to the last byte.
    let filler = mount.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 1 << 16];
        while f.write_all(&block).is_ok() {}
    }
    // Blocks until the node gives up: it must exit, not run on.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the node ran on with a full disk: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let _ = cli(&["rpc", "generatetoaddress", "50", &address]);
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "{status}: {text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: critical task `chain` panicked: database write failed")
            && last.contains("free disk space"),
        "{text}"
    );
    // Space again: the node reopens its database without repair, at or
    // above the height it had, and goes on.
    std::fs::remove_file(&filler).expect("rm filler");
    let node = NodeProcess::start_raw(&mount, port, &["--no-network", "--no-mine"]);
    let h = node.height();
    assert!(h >= 20, "reopened at {h}");
    node.json(&["mine", "generate", "5"]);
    assert_eq!(node.height(), h + 5);
    let tip = node.json(&["rpc", "getbestblockhash"]);
    let block = node.json(&["rpc", "getblock", tip.as_str().expect("hash")]);
    assert_eq!(block["height"].as_u64(), Some(h + 5));
    node.stop();
}
