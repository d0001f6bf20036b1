//! The NAT lab: real nodes behind real NATs, on one machine.
//!
//! Linux network namespaces make the machines: a "wan" namespace holds a
//! bridge (the internet, a non-private range, 17.0.0.0/24) with a relay R
//! and two routers on it; node A sits behind router A (10.1.0.0/24), node B
//! behind router B (10.2.0.0/24). Each router masquerades its LAN, forwards
//! inbound only for established connections, and drops new inbound
//! connections to itself on its WAN side (without that last rule the first
//! punch packet is answered by the router and the punch fails).
//!
//! 1. Cone NAT (`MASQUERADE`): A and B find by AutoNAT that they are
//!    unreachable and reserve slots on R; A reaches B through R; DCUtR
//!    upgrades the connection to a direct one; a media download A ← B runs
//!    over it, and R carries almost none of its bytes.
//! 2. Symmetric-like NAT (`MASQUERADE --random-fully`): the punch fails and
//!    the peers stay connected through R, where small requests (status)
//!    still work.
//!
//! Needs root, `ip netns` and iptables (`make test` installs iptables; CI
//! runs as root); skipped with a message saying which is missing otherwise.
//! Every namespace has a name unique to the test run and is removed at the
//! end, also when the test fails.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::harness::BIN;

const WAN_NET: &str = "17.0.0";
const RELAY_IP: &str = "17.0.0.10";
const P2P_PORT: u16 = 4001;
const RPC_PORT: u16 = 8332;
const METRICS_PORT: u16 = 9100;

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why the lab cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if unsafe_geteuid() != 0 {
        return Some("not root (network namespaces need root)".into());
    }
    // Unique per call: tests may share a process (`cargo test` threads).
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = format!("rcprobe{}x{n}", std::process::id() % 100_000);
    let made = Command::new("ip").args(["netns", "add", &probe]).output();
    match made {
        Ok(o) if o.status.success() => {
            let _ = run(&["ip", "netns", "del", &probe]);
        }
        Ok(o) => {
            return Some(format!(
                "`ip netns add` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("no `ip` command: {e}")),
    }
    if !Path::new("/usr/sbin/iptables").exists() {
        return Some("no iptables (scripts/install-deps.sh installs it)".into());
    }
    None
}

fn unsafe_geteuid() -> u32 {
    // The uid from /proc, not libc: the test crate has no libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The namespaces and links of one lab; removed on drop.
struct Lab {
    prefix: String,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    fn exec(&self, role: &str, args: &[&str]) {
        let ns = self.ns(role);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(args);
        must(&full);
    }

    /// Builds the lab; `symmetric` gives both routers `--random-fully`.
    fn build(symmetric: bool, quic: bool) -> Lab {
        let id = std::process::id() % 100_000;
        let kind = match (symmetric, quic) {
            (true, _) => "s",
            (false, false) => "t",
            (false, true) => "q",
        };
        let lab = Lab {
            prefix: format!("rc{id}{kind}"),
        };
        for role in ["w", "r", "na", "nb", "a", "b"] {
            must(&["ip", "netns", "add", &lab.ns(role)]);
            lab.exec(role, &["ip", "link", "set", "lo", "up"]);
        }
        // The internet: a bridge in the wan namespace.
        lab.exec("w", &["ip", "link", "add", "br0", "type", "bridge"]);
        lab.exec("w", &["ip", "link", "set", "br0", "up"]);
        let p = &lab.prefix;
        // A veth pair from the wan bridge into `role` with `ip`.
        let wan_link = |role: &str, ip: &str| {
            let (outer, inner) = (format!("{p}{role}o"), format!("{p}{role}i"));
            must(&[
                "ip",
                "link",
                "add",
                &outer,
                "netns",
                &lab.ns("w"),
                "type",
                "veth",
                "peer",
                "name",
                &inner,
                "netns",
                &lab.ns(role),
            ]);
            lab.exec("w", &["ip", "link", "set", &outer, "master", "br0", "up"]);
            lab.exec(
                role,
                &["ip", "addr", "add", &format!("{ip}/24"), "dev", &inner],
            );
            lab.exec(role, &["ip", "link", "set", &inner, "up"]);
            inner
        };
        wan_link("r", RELAY_IP);
        // An AutoNAT dial-back to a NATed node is dropped by its router, so
        // the dialer learns of it only when its SYN retries run out (about
        // 2 min by default): the lab's hosts give up after 3 s (2 retries)
        // so the test learns "unreachable" in seconds.
        for role in ["r", "a", "b"] {
            lab.exec(role, &["sysctl", "-q", "-w", "net.ipv4.tcp_syn_retries=2"]);
        }
        for (side, wan_ip, lan) in [
            ("a", format!("{WAN_NET}.2"), "10.1.0"),
            ("b", format!("{WAN_NET}.3"), "10.2.0"),
        ] {
            let router = format!("n{side}");
            let wan_if = wan_link(&router, &wan_ip);
            // The LAN: a veth pair router ↔ host.
            let (r_if, h_if) = (format!("{p}{side}l"), format!("{p}{side}h"));
            must(&[
                "ip",
                "link",
                "add",
                &r_if,
                "netns",
                &lab.ns(&router),
                "type",
                "veth",
                "peer",
                "name",
                &h_if,
                "netns",
                &lab.ns(side),
            ]);
            lab.exec(
                &router,
                &["ip", "addr", "add", &format!("{lan}.1/24"), "dev", &r_if],
            );
            lab.exec(&router, &["ip", "link", "set", &r_if, "up"]);
            lab.exec(
                side,
                &["ip", "addr", "add", &format!("{lan}.2/24"), "dev", &h_if],
            );
            lab.exec(side, &["ip", "link", "set", &h_if, "up"]);
            lab.exec(
                side,
                &["ip", "route", "add", "default", "via", &format!("{lan}.1")],
            );
            lab.exec(&router, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
            let mut masq = vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                &wan_if,
                "-j",
                "MASQUERADE",
            ];
            if symmetric {
                masq.push("--random-fully");
            }
            lab.exec(&router, &masq);
            lab.exec(
                &router,
                &["iptables", "-A", "FORWARD", "-i", &r_if, "-j", "ACCEPT"],
            );
            lab.exec(
                &router,
                &[
                    "iptables",
                    "-A",
                    "FORWARD",
                    "-i",
                    &wan_if,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "ESTABLISHED,RELATED",
                    "-j",
                    "ACCEPT",
                ],
            );
            lab.exec(
                &router,
                &["iptables", "-A", "FORWARD", "-i", &wan_if, "-j", "DROP"],
            );
            lab.exec(
                &router,
                &[
                    "iptables",
                    "-A",
                    "INPUT",
                    "-i",
                    &wan_if,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW",
                    "-j",
                    "DROP",
                ],
            );
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for role in ["a", "b", "na", "nb", "r", "w"] {
            let _ = run(&["ip", "netns", "del", &self.ns(role)]);
        }
    }
}

/// A node in a namespace; its RPC is reached from inside it.
struct LabNode {
    ns: String,
    child: Child,
    datadir: PathBuf,
}

impl LabNode {
    fn start(lab: &Lab, role: &str, dir: &Path, extra: &[String]) -> LabNode {
        let ns = lab.ns(role);
        let datadir = dir.join(role);
        std::fs::create_dir_all(&datadir).expect("datadir");
        let log = std::fs::File::create(datadir.join("node.log")).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, BIN, "--dev", "--datadir"])
            .arg(&datadir)
            .args([
                "node",
                "--rpc-bind",
                &format!("127.0.0.1:{RPC_PORT}"),
                "--no-mdns",
                "--no-mine",
            ])
            .args(extra)
            .env("RUST_LOG", "info,net=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn node");
        let node = LabNode { ns, child, datadir };
        node.wait(Duration::from_secs(60), "RPC", |n| {
            n.try_json(&["rpc", "getblockcount"]).is_some()
        });
        node
    }

    fn try_json(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIN, "--dev", "--datadir"])
            .arg(&self.datadir)
            .args(["--rpc-url", &format!("http://127.0.0.1:{RPC_PORT}")])
            .args(args)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn json(&self, args: &[&str]) -> Value {
        self.try_json(args)
            .unwrap_or_else(|| panic!("rusty-cli {args:?} failed in {}", self.ns))
    }

    fn wait(&self, within: Duration, what: &str, mut ok: impl FnMut(&LabNode) -> bool) {
        let deadline = Instant::now() + within;
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "{}: {what} not within {within:?}; log:\n{}",
                self.ns,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.datadir.join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("net") && !l.contains("publish"))
            .collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Bytes the node's transports carried in and out (libp2p's bandwidth
    /// counters on `/metrics`, read from inside its namespace).
    fn bytes_carried(&self) -> u64 {
        let script = format!(
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{METRICS_PORT}/metrics').read().decode())"
        );
        let out = run(&["ip", "netns", "exec", &self.ns, "python3", "-c", &script]);
        assert!(
            out.status.success(),
            "scraping {}: {}",
            self.ns,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("rusty_libp2p") && l.contains("_bandwidth_bytes_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    fn nat(&self) -> Value {
        self.json(&["rpc", "getnetworkinfo"])["nat"].clone()
    }

    fn peer(&self, id: &str) -> Option<Value> {
        self.json(&["rpc", "getpeerinfo"])
            .as_array()?
            .iter()
            .find(|p| p["peerid"] == id)
            .cloned()
    }
}

impl Drop for LabNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The transports the lab runs over: one at a time, so the punch that
/// succeeds is that transport's.
#[derive(Clone, Copy)]
enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    /// The multiaddr part after the IP.
    fn suffix(self) -> String {
        match self {
            Transport::Tcp => format!("tcp/{P2P_PORT}"),
            Transport::Quic => format!("udp/{P2P_PORT}/quic-v1"),
        }
    }
}

/// Starts R, A and B; returns them with B's peer id, once A is connected
/// to B through R.
fn relayed_pair(lab: &Lab, dir: &Path, t: Transport) -> (LabNode, LabNode, LabNode, String) {
    let listen = vec![
        "--listen".to_owned(),
        format!("/ip4/0.0.0.0/{}", t.suffix()),
    ];
    let relay_addr = format!("/ip4/{RELAY_IP}/{}", t.suffix());
    let mut relay_args = listen.clone();
    relay_args.extend([
        "--external-addr".to_owned(),
        relay_addr.clone(),
        "--metrics-bind".to_owned(),
        format!("127.0.0.1:{METRICS_PORT}"),
    ]);
    let relay = LabNode::start(lab, "r", dir, &relay_args);
    let relay_id = relay.json(&["rpc", "getnetworkinfo"])["peerid"]
        .as_str()
        .expect("peerid")
        .to_owned();
    let mut boot = listen.clone();
    boot.extend([
        "--bootnode".to_owned(),
        format!("{relay_addr}/p2p/{relay_id}"),
    ]);
    let a = LabNode::start(lab, "a", dir, &boot);
    let b = LabNode::start(lab, "b", dir, &boot);
    // AutoNAT finds B unreachable; B reserves a slot on R.
    b.wait(Duration::from_secs(90), "a relay reservation", |n| {
        n.nat()["relayreservations"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    assert_eq!(b.nat()["reachability"], "private");
    let b_id = b.json(&["rpc", "getnetworkinfo"])["peerid"]
        .as_str()
        .expect("peerid")
        .to_owned();
    let circuit = format!("{relay_addr}/p2p/{relay_id}/p2p-circuit/p2p/{b_id}");
    a.json(&["rpc", "addnode", &circuit, "onetry"]);
    a.wait(Duration::from_secs(30), "a connection to B", |n| {
        n.peer(&b_id).is_some()
    });
    (relay, a, b, b_id)
}

#[test]
fn behind_two_nats_a_reaches_b_through_a_relay_and_a_tcp_hole_punch_makes_it_direct() {
    punch_and_download(Transport::Tcp);
}

#[test]
fn behind_two_nats_a_reaches_b_through_a_relay_and_a_quic_hole_punch_makes_it_direct() {
    punch_and_download(Transport::Quic);
}

fn punch_and_download(t: Transport) {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED nat lab: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::build(false, matches!(t, Transport::Quic));
    let started = Instant::now();
    let (relay, a, b, b_id) = relayed_pair(&lab, dir.path(), t);
    // DCUtR: the relayed connection is replaced by a direct one.
    a.wait(Duration::from_secs(60), "a direct connection to B", |n| {
        n.peer(&b_id).is_some_and(|p| p["relayed"] == false)
    });
    let direct_after = started.elapsed();
    let peer = a.peer(&b_id).expect("B");
    let addr = peer["addr"].as_str().unwrap_or_default().to_owned();
    assert!(
        !addr.contains("p2p-circuit"),
        "direct, not through R: {addr}"
    );
    let proto = match t {
        Transport::Tcp => "/tcp/",
        Transport::Quic => "/quic-v1",
    };
    assert!(
        addr.contains(proto),
        "the punched connection is {proto}: {addr}"
    );
    let punched: u64 = [&a, &b]
        .iter()
        .map(|n| n.nat()["holepunches"]["succeeded"].as_u64().unwrap_or(0))
        .sum();
    assert!(punched >= 1, "a hole punch succeeded on A or B");
    let punch_ms = [&a, &b]
        .iter()
        .filter_map(|n| n.nat()["lastholepunchms"].as_u64())
        .min();

    // A media download from B runs over the direct connection.
    let file = dir.path().join("clip.bin");
    let data: Vec<u8> = (0..(4u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &data).expect("write");
    let relay_before = relay.bytes_carried();
    assert!(
        relay_before > 0,
        "R's bandwidth counters are read (it has carried handshakes)"
    );
    let published = b.json(&[
        "stream",
        "publish",
        file.to_str().expect("path"),
        "--title",
        "lab clip",
    ]);
    let id = published.as_str().expect("content id").to_owned();
    a.wait(Duration::from_secs(60), "B's announcement", |n| {
        n.try_json(&["rpc", "stream_info", &id]).is_some()
    });
    a.json(&["rpc", "stream_view", &id]);
    a.wait(Duration::from_secs(120), "the download", |n| {
        n.json(&["rpc", "stream_status", &id])["downloads"][0]["state"] == "complete"
    });
    let status = a.json(&["rpc", "stream_status", &id]);
    let from_b = status["downloads"][0]["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["peer"] == b_id.as_str())
        .filter_map(|p| p["bytes"].as_u64())
        .sum::<u64>();
    assert_eq!(
        from_b,
        data.len() as u64,
        "every byte came from B: {status}"
    );
    let through_relay = relay.bytes_carried().saturating_sub(relay_before);
    let share = through_relay as f64 / (2.0 * data.len() as f64);
    assert!(
        share < 0.05,
        "R carried {through_relay} bytes in and out while 4 MiB moved A ← B: the download went through the relay"
    );
    eprintln!(
        "nat lab (cone, {}): relayed to direct in {direct_after:?} from the start (punch {punch_ms:?} ms after the relayed connection); R carried {through_relay} B ({:.2} % of the download's bytes in and out)",
        t.suffix(),
        share * 100.0
    );
    drop((relay, a, b));
}

#[test]
fn behind_symmetric_nats_the_punch_fails_and_small_requests_still_go_through_the_relay() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED nat lab: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = Lab::build(true, false);
    let (relay, a, b, b_id) = relayed_pair(&lab, dir.path(), Transport::Tcp);
    // The punch is tried and fails; the connection stays relayed.
    let tried = |n: &LabNode| {
        let p = &n.nat()["holepunches"];
        p["failed"].as_u64().unwrap_or(0) + p["succeeded"].as_u64().unwrap_or(0) > 0
    };
    a.wait(Duration::from_secs(90), "a hole punch attempt", |n| {
        tried(n) || tried(&b)
    });
    let succeeded: u64 = [&a, &b]
        .iter()
        .map(|n| n.nat()["holepunches"]["succeeded"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(succeeded, 0, "no punch succeeds through a symmetric NAT");
    let peer = a.peer(&b_id).expect("B still connected through R");
    assert_eq!(peer["relayed"], true, "{peer}");
    // A small request (the chain status exchange) went through the relay:
    // A knows B's height.
    a.wait(
        Duration::from_secs(30),
        "B's status through the relay",
        |n| {
            n.peer(&b_id)
                .is_some_and(|p| p["synced_headers"].as_i64() >= Some(0))
        },
    );
    drop((relay, a, b));
}
