//! The Ethereum tools the bridge's tests use, installed pinned from npm
//! (`tests/eth/package.json` and its lock file): solc, which compiles the
//! HTLC contract, and hardhat, whose `hardhat node` is a real local
//! Ethereum development node. Kept between runs beside the shared target
//! directory; a test without npm or without the registry skips, saying
//! so.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rusty_node::rpc::client::RpcClient;
use serde_json::{json, Value};

use crate::{harness::free_port, install_lock::install_lock};

/// The committed npm project: package.json, its lock file, the hardhat
/// config and the contract's compile script.
fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("eth")
}

/// Where the contract and its committed ABI and bytecode live.
pub fn contract_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("rusty-node")
        .join("src")
        .join("bridge")
        .join("eth")
}

const PROJECT_FILES: [&str; 4] = [
    "package.json",
    "package-lock.json",
    "hardhat.config.js",
    "compile.js",
];

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home)
        .join(".cache")
        .join("rusty-coin")
        .join("eth-tools")
}

/// FNV-1a, 64 bits: a stable hash of the project files for the stamp.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn tool_version(tool: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The installed tools' directory, or why they cannot be had here (the
/// caller prints it and skips). Reinstalled when a project file or the
/// Node version changes, into a fresh directory renamed into place.
pub fn tools() -> Result<PathBuf, String> {
    let node = tool_version("node").ok_or("node is not installed (run `make deps`)")?;
    tool_version("npm").ok_or("npm is not installed (run `make deps`)")?;
    let mut all = Vec::new();
    for name in PROJECT_FILES {
        all.extend(fs::read(project_dir().join(name)).expect("read the eth project"));
    }
    let stamp = format!("{:016x} {node}\n", fnv1a64(&all));
    let dir = cache_dir();
    if fs::read_to_string(dir.join("stamp")).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(dir);
    }
    let parent = dir.parent().expect("cache parent");
    let _installing = install_lock(parent, "eth-tools");
    if fs::read_to_string(dir.join("stamp")).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(dir);
    }
    let tmp = parent.join(format!("eth-tools.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).expect("create the install dir");
    for name in PROJECT_FILES {
        fs::copy(project_dir().join(name), tmp.join(name)).expect("copy the eth project");
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&tmp)
        .output()
        .expect("run npm ci");
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let offline = Command::new("npm")
            .arg("ping")
            .output()
            .map_or(true, |o| !o.status.success());
        if offline {
            return Err(format!("the npm registry is unreachable: {err}"));
        }
        panic!("npm ci of tests/eth failed with the registry reachable:\n{err}");
    }
    fs::write(tmp.join("stamp"), &stamp).expect("write the stamp");
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir).expect("move the tools into place");
    Ok(dir)
}

/// The tools, or `None` after printing why this test skips.
pub fn tools_or_skip(test: &str) -> Option<PathBuf> {
    match tools() {
        Ok(dir) => Some(dir),
        Err(why) => {
            eprintln!("SKIPPED {test}: the Ethereum tools are not installable here: {why}");
            None
        }
    }
}

/// A `hardhat node` on a free loopback port (chain id 31337, a block
/// every second and on each transaction), stopped on drop.
pub struct EthNode {
    child: Child,
    pub url: String,
    client: RpcClient,
}

/// Hardhat's well-known development accounts #1 and #2 (10,000 ether
/// each at genesis): public test keys, never for real funds.
pub const DEV_KEYS: [&str; 2] = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];
pub const DEV_ADDRESSES: [&str; 2] = [
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
];

impl EthNode {
    pub fn start(tools: &Path) -> EthNode {
        let port = free_port();
        let mut child = Command::new(tools.join("node_modules").join(".bin").join("hardhat"))
            .args([
                "node",
                "--config",
                "hardhat.config.js",
                "--hostname",
                "127.0.0.1",
            ])
            .args(["--port", &port.to_string()])
            .current_dir(tools)
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .env("CI", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hardhat node");
        // Drain its output (one log line per request) so it never blocks.
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        let url = format!("http://127.0.0.1:{port}");
        let client = RpcClient::new(&url).expect("url");
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.call("eth_chainId", json!([])).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("hardhat node exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "hardhat node did not answer in 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        EthNode { child, url, client }
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.client
            .call(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// An account's balance in ether (exact enough for fees of a few
    /// thousandths).
    pub fn balance(&self, address: &str) -> f64 {
        let wei = self.call("eth_getBalance", json!([address, "latest"]));
        let wei = u128::from_str_radix(
            wei.as_str()
                .and_then(|s| s.strip_prefix("0x"))
                .expect("hex balance"),
            16,
        )
        .expect("balance");
        wei as f64 / 1e18
    }

    pub fn block_number(&self) -> u64 {
        let v = self.call("eth_blockNumber", json!([]));
        u64::from_str_radix(
            v.as_str().and_then(|s| s.strip_prefix("0x")).expect("hex"),
            16,
        )
        .expect("block number")
    }
}

impl Drop for EthNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `key` to a file under `dir` for `--bridge-chain …,key=PATH`.
pub fn key_file(dir: &Path, key: &str) -> PathBuf {
    let path = dir.join("eth.key");
    fs::write(&path, format!("{key}\n")).expect("write the key");
    path
}
