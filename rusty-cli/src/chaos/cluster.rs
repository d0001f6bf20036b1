//! The soak's nodes: real `rusty-cli node` processes on loopback, started,
//! killed with SIGKILL, paused with SIGSTOP and restarted by the driver,
//! and talked to over JSON-RPC only (as a user's script would).

use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use rusty_node::rpc::client::RpcClient;
use serde_json::{json, Value};

/// What a node does in the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Miner,
    /// Runs with `--masternode`; registered at set-up unless it is the
    /// spare, which joins later (masternode churn).
    Masternode,
    /// A plain node: wallet, media.
    Plain,
}

/// One node process and how to start it again.
pub struct NodeProc {
    pub index: usize,
    pub role: Role,
    /// `--datadir` (the root; files in `<dir>/dev`).
    pub dir: PathBuf,
    pub rpc_port: u16,
    pub p2p_port: u16,
    /// Its libp2p identity, learned on first start (kept across restarts
    /// in `node.key`).
    pub peer_id: String,
    /// Mining is switched off for the final phase.
    pub mine: bool,
    /// `--clock-skew` for its next start.
    pub clock_skew: i64,
    child: Option<Child>,
    paused: bool,
    /// Client with the cookie of the current run.
    client: Option<RpcClient>,
}

impl NodeProc {
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Running and not stopped by SIGSTOP: it answers RPC.
    pub fn is_live(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Outside the datadir, so that a node stopped by a full disk can say
    /// why.
    pub fn log_path(&self) -> PathBuf {
        self.dir
            .parent()
            .unwrap_or(&self.dir)
            .join("logs")
            .join(format!("node{}.log", self.index))
    }

    pub fn operator_key_path(&self) -> PathBuf {
        self.dir.join("operator.key")
    }

    /// `/ip4/127.0.0.1/tcp/<p2p port>`.
    pub fn listen_addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port)
    }

    /// Calls `method` on this node (10 s timeout: a node that hangs must
    /// not stall the soak's clock).
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.call_with(method, params, None)
    }

    /// Calls `method` with a longer timeout (mining on demand waits for the
    /// chain thread, which may be busy with a reorganisation).
    pub fn call_slow(&self, method: &str, params: Value) -> Result<Value> {
        self.call_with(method, params, Some(Duration::from_secs(120)))
    }

    fn call_with(&self, method: &str, params: Value, timeout: Option<Duration>) -> Result<Value> {
        let Some(client) = &self.client else {
            bail!("node {} is not running", self.index);
        };
        let reply = match timeout {
            Some(t) => client.clone().with_timeout(t).call(method, params),
            None => client.call(method, params),
        };
        reply.with_context(|| format!("node {}: {method}", self.index))
    }

    /// Its tip height, if it answers.
    pub fn height(&self) -> Option<u64> {
        self.call("getblockcount", json!([])).ok()?.as_u64()
    }

    /// Resident memory of the process, from `/proc` (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Exited on its own (crashed, or refused to start)? Reaps it.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        self.client = None;
        self.paused = false;
        Some(status)
    }
}

/// A loopback port nobody listens on, below the ephemeral range, so no outgoing connection
/// of an already running node can take it before this node binds it.
fn free_port() -> Result<u16> {
    Ok(rusty_network::port::unused_loopback_port()?)
}

/// The soak's nodes.
pub struct Cluster {
    pub nodes: Vec<NodeProc>,
    binary: PathBuf,
}

impl Cluster {
    /// Datadirs under `base` (`node<i>`), fresh ports, nothing started.
    pub fn new(base: &Path, roles: &[Role]) -> Result<Cluster> {
        let binary = std::env::current_exe().context("the path of rusty-cli itself")?;
        let mut nodes = Vec::with_capacity(roles.len());
        for (index, &role) in roles.iter().enumerate() {
            let dir = base.join(format!("node{index}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::create_dir_all(base.join("logs"))?;
            nodes.push(NodeProc {
                index,
                role,
                dir,
                rpc_port: free_port()?,
                p2p_port: free_port()?,
                peer_id: String::new(),
                mine: role == Role::Miner,
                clock_skew: 0,
                child: None,
                paused: false,
                client: None,
            });
        }
        Ok(Cluster { nodes, binary })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, i: usize) -> &NodeProc {
        &self.nodes[i]
    }

    /// Indices of nodes that answer RPC now.
    pub fn live(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.nodes[i].is_live())
            .collect()
    }

    /// Starts node `i` (again) and waits until it answers RPC; its peers
    /// are every other node's address.
    pub fn start(&mut self, i: usize) -> Result<()> {
        let bootnodes: Vec<String> = (0..self.len())
            .filter(|&j| j != i)
            .map(|j| self.nodes[j].listen_addr())
            .collect();
        let n = &mut self.nodes[i];
        if n.child.is_some() {
            bail!("node {i} is already running");
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.log_path())
            .with_context(|| format!("opening {}", n.log_path().display()))?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--dev", "--datadir"])
            .arg(&n.dir)
            .arg("node")
            .args(["--rpc-bind", &format!("127.0.0.1:{}", n.rpc_port)])
            .args(["--listen", &n.listen_addr(), "--no-mdns"])
            .arg(if n.mine { "--mine" } else { "--no-mine" });
        for b in &bootnodes {
            cmd.args(["--bootnode", b]);
        }
        if n.role == Role::Masternode {
            cmd.arg("--masternode")
                .arg("--operator-key")
                .arg(n.operator_key_path());
        }
        if n.clock_skew != 0 {
            cmd.arg(format!("--clock-skew={}", n.clock_skew));
        }
        let child = cmd
            .env("RUST_LOG", "info,libp2p_gossipsub=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        n.child = Some(child);
        n.paused = false;
        let cookie = n.dir.join("dev").join(".cookie");
        let url = format!("http://127.0.0.1:{}", n.rpc_port);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = n.exited() {
                bail!(
                    "node {i} exited while starting ({status}); see {}",
                    n.log_path().display()
                );
            }
            // The cookie is rewritten by every start: read it once the
            // server answers.
            let client = RpcClient::new(&url)?
                .with_cookie_file(&cookie)
                .map(|c| c.with_timeout(Duration::from_secs(10)));
            if let Ok(c) = client {
                if c.call("getblockcount", json!([])).is_ok() {
                    n.client = Some(c);
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i} did not answer RPC within 90 s; see {}",
                    n.log_path().display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if n.peer_id.is_empty() {
            let info = n.call("getnetworkinfo", json!([]))?;
            n.peer_id = info["localmultiaddrs"][0]
                .as_str()
                .and_then(|a| a.rsplit("/p2p/").next())
                .unwrap_or_default()
                .to_string();
        }
        Ok(())
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(mut child) = n.child.take() {
            if n.paused {
                signal(child.id(), "CONT");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        n.client = None;
        n.paused = false;
    }

    /// SIGSTOP / SIGCONT: a stalled peer (its sockets stay open).
    pub fn pause(&mut self, i: usize, paused: bool) {
        let n = &mut self.nodes[i];
        if let Some(pid) = n.pid() {
            if n.paused != paused {
                signal(pid, if paused { "STOP" } else { "CONT" });
                n.paused = paused;
            }
        }
    }

    /// Asks node `i` to stop over RPC and waits up to 60 s, then kills it.
    pub fn stop(&mut self, i: usize) {
        self.pause(i, false);
        let n = &mut self.nodes[i];
        let _ = n.call("stop", json!([]));
        let deadline = Instant::now() + Duration::from_secs(60);
        while n.child.is_some() && Instant::now() < deadline {
            if n.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9(i);
    }

    /// Stops every node (the end of the soak, or an error).
    pub fn stop_all(&mut self) {
        for i in 0..self.len() {
            self.stop(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.len() {
            self.kill9(i);
        }
    }
}

/// `kill -<sig> <pid>` (the driver needs no libc binding for two signals).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
