//! Ethereum tooling, unmodified, against a real dev node: ethers v6 and
//! viem (pinned from npm, `tests/eth/package-lock.json`) compile Greeter
//! with the pinned solc, deploy it, call and transact, and read its events
//! through `eth_getLogs`; web3.py (pinned from PyPI,
//! `tests/eth/py/requirements.txt`) sends type-2 transactions. The node
//! serves them on `--eth-rpc-bind`, without credentials; the account is
//! funded by `rusty-cli contract deposit` from the node's wallet. Without
//! npm or PyPI the test fails, saying which.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    eth_tools::{tools, DEV_ADDRESSES, DEV_KEYS},
    harness::{free_port, NodeProcess},
};

/// The dev network's chain id (`rusty_shared_types::params::DEV`).
const CHAIN_ID: &str = "7373";

fn scripts_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("eth")
}

/// Runs a client script and returns the JSON line it prints.
fn run_client(mut cmd: Command, what: &str) -> Value {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what} printed {line:?}: {e}"))
}

fn balance(node: &NodeProcess, address: &str) -> Value {
    node.json(&["contract", "balance", address])
}

#[test]
fn ethers_viem_and_web3py_work_unmodified() {
    let tools = tools().unwrap_or_else(|why| {
        panic!("the Ethereum client suite needs ethers, viem and solc from npm, and cannot get them: {why}")
    });
    let python =
        crate::pyvenv::venv_python("eth-py", &scripts_dir().join("py").join("requirements.txt"));

    let dir = tempfile::tempdir().expect("tempdir");
    let eth_port = free_port();
    let eth_bind = format!("127.0.0.1:{eth_port}");
    let node = NodeProcess::start(
        dir.path(),
        free_port(),
        &["--mine", "--eth-rpc-bind", &eth_bind],
    );
    let url = format!("http://{eth_bind}");

    // Mature coins, then 100 RSC into the account of hardhat's public
    // test key #1.
    let wallet = node.json(&["wallet", "address"]);
    let wallet = wallet.as_str().expect("address");
    node.json(&["mine", "generate", "11", "--address", wallet]);
    let account = DEV_ADDRESSES[0];
    let bad = node.cli(&["contract", "deposit", "0x1234", "1"]);
    assert!(!bad.status.success(), "a malformed address is refused");
    node.json(&["contract", "deposit", account, "100"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(&node, account)["balance"] != "100" {
        assert!(
            Instant::now() < deadline,
            "the deposit was not credited in 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let node_path = tools.join("node_modules");
    let client = |script: &str| {
        let mut c = Command::new("node");
        c.arg(scripts_dir().join("contracts").join(script))
            .env("NODE_PATH", &node_path)
            .env("RPC_URL", &url)
            .env("CHAIN_ID", CHAIN_ID)
            .env("PRIVATE_KEY", DEV_KEYS[0]);
        c
    };
    let ethers = run_client(client("ethers.js"), "the ethers suite");
    assert_eq!(ethers["version"], "6.17.0");
    let contract = ethers["contract"]
        .as_str()
        .expect("contract address")
        .to_string();
    let viem = run_client(client("viem.js"), "the viem suite");
    assert_ne!(viem["contract"].as_str(), Some(contract.as_str()));

    let mut py = Command::new(&python);
    py.arg(scripts_dir().join("py").join("web3_type2.py"))
        .env("RPC_URL", &url)
        .env("CHAIN_ID", CHAIN_ID)
        .env("PRIVATE_KEY", DEV_KEYS[0])
        .env("CONTRACT", &contract);
    run_client(py, "the web3.py suite");

    // What the clients did, seen from our side: the contract exists, and
    // the account paid the 0.5 RSC it endowed, 1 RSC sent and gas.
    let c = balance(&node, &contract);
    assert_eq!(c["contract"], true);
    assert_eq!(c["balance"], "0.5");
    let left: f64 = balance(&node, account)["balance"]
        .as_str()
        .expect("balance")
        .parse()
        .expect("decimal");
    assert!(
        left < 98.5 && left > 98.0,
        "100 - 0.5 - 1 - gas, found {left}"
    );
    node.stop();
}
