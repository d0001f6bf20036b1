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

/// One JSON-RPC POST to `addr` without credentials: the parsed body.
fn post(addr: &str, body: &Value) -> Value {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    let body = body.to_string();
    write!(
        conn,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut resp = String::new();
    conn.read_to_string(&mut resp).expect("response");
    let (_, body) = resp.split_once("\r\n\r\n").expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
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
    // The background miner races `generate` (a CI run once found 90 of
    // the 100 RSC mature): mine on until the deposit is affordable.
    let funded_by = Instant::now() + Duration::from_secs(60);
    loop {
        let r = node.cli(&["contract", "deposit", account, "100"]);
        if r.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains("insufficient funds") && Instant::now() < funded_by,
            "deposit: {err}"
        );
        node.json(&["mine", "generate", "1", "--address", wallet]);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(&node, account)["balance"] != "100" {
        assert!(
            Instant::now() < deadline,
            "the deposit was not credited in 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The unauthenticated port: a batch of 150 in one request, and no
    // wallet method reachable.
    let batch: Vec<Value> = (0..150)
        .map(|i| serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId", "params": []}))
        .collect();
    let answers = post(&eth_bind, &Value::Array(batch));
    let answers = answers.as_array().expect("a batch answer");
    assert_eq!(answers.len(), 150);
    assert!(answers.iter().all(|a| a["result"] == "0x1ccd"));
    for method in ["getbalance", "sendtoaddress", "contract_deposit", "stop"] {
        let answer = post(
            &eth_bind,
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}),
        );
        assert_eq!(
            answer["error"]["code"], -32601,
            "{method} must not be served there"
        );
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
    // The benchmark's ERC-20 bytecode is what the pinned solc makes of
    // Token.sol.
    let check = Command::new("node")
        .arg(scripts_dir().join("contracts").join("token-bin.js"))
        .arg("--check")
        .env("NODE_PATH", &node_path)
        .output()
        .expect("run token-bin.js");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
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

    // eth_getLogs as geth filters: viem's contract logged one `Greeted`
    // (two topics); a filter with more topic positions than a log has
    // never matches it, and swapped bounds are an error, not nothing.
    let logs = |filter: Value| {
        post(
            &eth_bind,
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [filter]}),
        )
    };
    let viem_contract = viem["contract"].as_str().expect("viem's contract");
    for (topics, found) in [
        (serde_json::json!([]), 1),
        (serde_json::json!([null, null]), 1),
        (serde_json::json!([null, null, null]), 0),
    ] {
        let answer = logs(serde_json::json!({
            "fromBlock": "0x0", "toBlock": "latest", "address": viem_contract, "topics": topics
        }));
        let got = answer["result"].as_array().map(Vec::len);
        assert_eq!(got, Some(found), "topics {topics}: {answer}");
    }
    let swapped = logs(serde_json::json!({"fromBlock": "0x5", "toBlock": "0x2"}));
    assert_eq!(
        swapped["error"]["message"], "invalid block range params",
        "{swapped}"
    );

    // A block filter over the raw port: new blocks' hashes, each once; an
    // id uninstalls once, and then is geth's "filter not found".
    let call = |method: &str, params: Value| {
        post(
            &eth_bind,
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        )
    };
    let id = call("eth_newBlockFilter", serde_json::json!([]))["result"]
        .as_str()
        .expect("a filter id")
        .to_string();
    node.json(&["mine", "generate", "2", "--address", wallet]);
    let tip = call("eth_getBlockByNumber", serde_json::json!(["latest", false]));
    let changes = call("eth_getFilterChanges", serde_json::json!([id]));
    let hashes = changes["result"].as_array().expect("hashes");
    assert!(hashes.len() >= 2, "{changes}");
    assert!(hashes.contains(&tip["result"]["hash"]), "{changes} {tip}");
    let again = call("eth_getFilterChanges", serde_json::json!([id]));
    let repeated = again["result"].as_array().expect("hashes");
    assert!(repeated.iter().all(|h| !hashes.contains(h)), "{again}");
    assert_eq!(
        call("eth_uninstallFilter", serde_json::json!([id]))["result"],
        true
    );
    assert_eq!(
        call("eth_uninstallFilter", serde_json::json!([id]))["result"],
        false
    );
    let gone = call("eth_getFilterChanges", serde_json::json!([id]));
    assert_eq!(gone["error"]["message"], "filter not found", "{gone}");

    // A halt is geth's error, not a revert: code -32000 and its reason;
    // an estimate that runs out of gas at any limit says so.
    let halted = call(
        "eth_call",
        serde_json::json!([{"from": account, "data": "0xfe"}, "latest"]),
    );
    assert_eq!(halted["error"]["code"], -32000, "{halted}");
    assert_eq!(halted["error"]["message"], "invalid opcode", "{halted}");
    let endless = call(
        "eth_estimateGas",
        serde_json::json!([{"from": account, "data": "0x5b600056"}]),
    );
    let why = endless["error"]["message"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("gas required exceeds allowance ("),
        "{endless}"
    );

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

/// `rusty-cli contract` end to end on one node, then `kill -9` while
/// blocks keep coming and the state is read again after the restart:
/// the state root, the UTXO set and the indexes commit in one batch.
#[test]
fn contract_cli_and_kill9_keep_the_account_world() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let node = NodeProcess::start(dir.path(), port, &["--mine"]);
    let wallet = node.json(&["wallet", "address"]);
    let wallet = wallet.as_str().expect("address").to_string();
    node.json(&["mine", "generate", "11", "--address", &wallet]);

    let key = dir.path().join("eth.key");
    std::fs::write(&key, DEV_KEYS[1]).expect("key file");
    let key = key.to_str().expect("utf-8");
    let me = DEV_ADDRESSES[1];
    node.json(&["contract", "deposit", me, "3"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(&node, me)["balance"] != "3" {
        assert!(
            Instant::now() < deadline,
            "the deposit was not credited in 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // Stores its call data's first word: PUSH1 0 CALLDATALOAD PUSH1 0
    // SSTORE STOP, behind a constructor that returns it.
    let code = dir.path().join("store.bin");
    std::fs::write(&code, "6007600c60003960076000f360003560005500").expect("code file");
    let deployed = node.json(&[
        "contract",
        "deploy",
        code.to_str().expect("utf-8"),
        "--key",
        key,
    ]);
    let contract = deployed["contract"].as_str().expect("contract").to_string();
    let word = format!("0x{:064x}", 42);
    node.json(&["contract", "call", &contract, &word, "--key", key]);
    let stored = node.json(&["rpc", "eth_getStorageAt", &contract, "0x0", "latest"]);
    assert_eq!(stored.as_str(), Some(word.as_str()));
    let read = node.json(&["contract", "call", &contract, "0x"]);
    assert_eq!(read.as_str(), Some("0x"), "the contract returns nothing");

    // One coin back out to the wallet, paid by a settlement transaction.
    let before = node.json(&["rpc", "getbalance"]);
    let out = node.json(&["contract", "withdraw", &wallet, "1", "--key", key]);
    let block = out["block"].as_str().expect("block");
    let height = u64::from_str_radix(block.trim_start_matches("0x"), 16).expect("height");
    let hash = node.json(&["rpc", "getblockhash", &height.to_string()]);
    let mined = node.json(&["rpc", "getblock", hash.as_str().expect("hash"), "2"]);
    let last = mined["tx"]
        .as_array()
        .expect("txs")
        .last()
        .expect("a tx")
        .clone();
    assert_eq!(last["vout"][0]["value"].as_f64(), Some(1.0), "{last}");
    assert!(node.json(&["rpc", "getbalance"]).as_f64() > before.as_f64());
    let bad = node.cli(&["contract", "withdraw", "drsc1nowhere", "1", "--key", key]);
    assert!(!bad.status.success());

    // The wallet's own EVM account: no key file anywhere.
    let own = node.json(&["contract", "address"]);
    let own = own.as_str().expect("address").to_string();
    node.json(&["contract", "deposit", &own, "2"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while balance(&node, &own)["balance"] != "2" {
        assert!(
            Instant::now() < deadline,
            "the deposit was not credited in 60 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let mine = node.json(&["contract", "deploy", code.to_str().expect("utf-8")]);
    let mine = mine["contract"].as_str().expect("contract").to_string();
    let seven = format!("0x{:064x}", 7);
    node.json(&["contract", "call", &mine, &seven, "--send"]);
    let stored = node.json(&["rpc", "eth_getStorageAt", &mine, "0x0", "latest"]);
    assert_eq!(stored.as_str(), Some(seven.as_str()));
    node.json(&["contract", "withdraw", &wallet, "0.5"]);
    assert_eq!(balance(&node, &own)["nonce"], 3);

    // kill -9 while the miner runs; everything reads back after restart.
    let account = balance(&node, me);
    node.kill9();
    let node = NodeProcess::start(dir.path(), port, &["--mine"]);
    let after = balance(&node, me);
    assert_eq!(
        node.json(&["contract", "address"]).as_str(),
        Some(own.as_str())
    );
    assert_eq!(after["nonce"], account["nonce"]);
    assert_eq!(after["balance"], account["balance"]);
    let stored = node.json(&["rpc", "eth_getStorageAt", &contract, "0x0", "latest"]);
    assert_eq!(stored.as_str(), Some(word.as_str()));
    let proof = node.json(&["rpc", "eth_getProof", &contract, "[\"0x0\"]", "latest"]);
    assert_eq!(proof["storageProof"][0]["value"], "0x2a");
    let start = node.height();
    while node.height() < start + 2 {
        std::thread::sleep(Duration::from_millis(200));
    }
    node.stop();
}
