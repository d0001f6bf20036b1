//! Starts `rusty-cli node` as a child process and runs client commands.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_rusty-cli");

/// `rusty-cli --datadir <datadir> localnet <args>`, running; each line it
/// prints arrives on the receiver (read by a thread, so it never blocks).
pub fn spawn_localnet(datadir: &Path, args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .arg("--datadir")
        .arg(datadir)
        .arg("localnet")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn localnet");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// One HTTP/1.1 GET to `addr` (retried until something listens, and while
/// the connection is reset before an answer, as a listener that is going
/// away does): the head and the body.
pub fn http_get(addr: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let resp = loop {
        let attempt = std::net::TcpStream::connect(addr).and_then(|mut conn| {
            write!(
                conn,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
            )?;
            let mut resp = Vec::new();
            conn.read_to_end(&mut resp)?;
            Ok(resp)
        });
        match attempt {
            Ok(resp) if !resp.is_empty() => break resp,
            Ok(_) if Instant::now() < deadline => {}
            Err(_) if Instant::now() < deadline => {}
            Ok(_) => panic!("{addr} closed without answering GET {path}"),
            Err(e) => panic!("GET {path} from {addr}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |p| p + 4);
    (
        String::from_utf8_lossy(&resp[..split]).into_owned(),
        resp[split..].to_vec(),
    )
}

/// A loopback port nobody listens on, below the ephemeral range (see `rusty_network::port`).
pub fn free_port() -> u16 {
    rusty_network::port::unused_loopback_port().expect("free port")
}

pub struct NodeProcess {
    pub child: Child,
    pub datadir: PathBuf,
    pub port: u16,
    /// `--network` (with `--dev`, so `par` means the PAR dev network).
    pub network: &'static str,
}

impl NodeProcess {
    /// A node on loopback only: P2P on a free TCP port, no mDNS, so tests
    /// running side by side never meet.
    pub fn start(datadir: &Path, port: u16, extra: &[&str]) -> NodeProcess {
        let mut args = vec!["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
        args.extend_from_slice(extra);
        Self::start_raw(datadir, port, &args)
    }

    /// A node with exactly these `node` arguments.
    pub fn start_raw(datadir: &Path, port: u16, extra: &[&str]) -> NodeProcess {
        Self::start_on("dev", datadir, port, extra)
    }

    /// A dev node of the chain of `network` (`dev`, `par` or `arc`) with
    /// exactly these `node` arguments.
    pub fn start_on(
        network: &'static str,
        datadir: &Path,
        port: u16,
        extra: &[&str],
    ) -> NodeProcess {
        let log = std::fs::File::create(
            datadir.join(format!("node-{}.log", Instant::now().elapsed().as_nanos())),
        )
        .expect("log file");
        let child = Command::new(BIN)
            .args(["--network", network, "--dev", "--datadir"])
            .arg(datadir)
            .args(["node", "--rpc-bind", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn node");
        let node = NodeProcess {
            child,
            datadir: datadir.to_path_buf(),
            port,
            network,
        };
        node.wait_ready();
        node
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.cli(&["rpc", "getblockcount"]).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node did not answer RPC within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a client subcommand against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run rusty-cli")
    }

    /// `rusty-cli <args>` aimed at this node, not started yet (for a
    /// client that runs beside the test, with its own stdio).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(["--network", self.network, "--dev", "--datadir"])
            .arg(&self.datadir)
            .args(["--rpc-url", &format!("http://127.0.0.1:{}", self.port)])
            .args(args);
        c
    }

    /// A client call that must succeed, parsed as JSON (bare strings too).
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "rusty-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub fn height(&self) -> u64 {
        self.json(&["rpc", "getblockcount"])
            .as_u64()
            .expect("height")
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    /// Asks the node to stop over RPC and waits for the process to exit.
    pub fn stop(mut self) {
        let _ = self.cli(&["rpc", "stop"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("node did not stop within 30 s");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line `child` writes to its (piped) standard output, read a
/// byte at a time so that nothing after it is taken.
pub fn first_line(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.as_mut().expect("a piped stdout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while std::io::Read::read(stdout, &mut byte).expect("the child's stdout") == 1
        && byte[0] != b'\n'
    {
        line.push(byte[0]);
    }
    String::from_utf8(line).expect("a line of text")
}
