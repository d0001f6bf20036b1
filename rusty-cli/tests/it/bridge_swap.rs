//! The bridge daemon end to end: Alice (RSC) and Bob (PAR), each with a
//! node of both chains, swap through `rusty-cli bridge` on real nodes; the
//! daemons fund, audit, redeem and find the secret by themselves while
//! blocks are mined.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{free_port, NodeProcess};

pub(crate) fn listen(p: u16) -> String {
    format!("/ip4/127.0.0.1/tcp/{p}")
}

pub(crate) fn wait_connected(n: &NodeProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while n.json(&["rpc", "getconnectioncount"]).as_u64() < Some(1) {
        assert!(Instant::now() < deadline, "nodes never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn mine(n: &NodeProcess, blocks: u64) {
    let to = n.json(&["rpc", "getnewaddress"]);
    n.json(&[
        "rpc",
        "generatetoaddress",
        &blocks.to_string(),
        to.as_str().expect("address"),
    ]);
}

pub(crate) fn balance(n: &NodeProcess) -> f64 {
    n.json(&["rpc", "getbalance"]).as_f64().expect("balance")
}

/// Trusted, pending and immature together: unchanged by coinbases maturing.
fn total_balance(n: &NodeProcess) -> f64 {
    let b = n.json(&["rpc", "getbalances"]);
    ["trusted", "untrusted_pending", "immature"]
        .iter()
        .map(|k| b["mine"][k].as_f64().expect("balance"))
        .sum()
}

pub(crate) fn state(n: &NodeProcess, id: &str) -> Value {
    n.json(&["bridge", "status", id])
}

/// Alice's and Bob's nodes of both chains; the RSC nodes run the bridge
/// with their owner's PAR node as `--bridge-chain`.
struct Parties {
    alice_par: NodeProcess,
    bob_par: NodeProcess,
    alice: NodeProcess,
    bob: NodeProcess,
    bob_args: Vec<String>,
    /// Where Alice's PAR node listens (Bob's PAR node dials it).
    alice_par_listen: String,
    _dirs: Vec<tempfile::TempDir>,
}

impl Parties {
    fn start() -> Parties {
        let dirs: Vec<_> = (0..4)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        // PAR: Alice's node and Bob's, connected.
        let par_listen = listen(free_port());
        let alice_par = NodeProcess::start_on(
            "par",
            dirs[0].path(),
            free_port(),
            &["--no-mine", "--no-mdns", "--listen", &par_listen],
        );
        let bob_par = NodeProcess::start_on(
            "par",
            dirs[1].path(),
            free_port(),
            &[
                "--no-mine",
                "--no-mdns",
                "--listen",
                &listen(free_port()),
                "--bootnode",
                &par_listen,
            ],
        );
        wait_connected(&bob_par);
        // RSC: each party's node reaches its own PAR node for the bridge.
        let bridge_flag = |par: &NodeProcess| {
            format!(
                "par-dev=http://127.0.0.1:{},cookie={}",
                par.port,
                par.datadir.join("par-dev").join(".cookie").display()
            )
        };
        let rsc_listen = listen(free_port());
        let alice_flag = bridge_flag(&alice_par);
        let alice = NodeProcess::start(
            dirs[2].path(),
            free_port(),
            &[
                "--no-mine",
                "--listen",
                &rsc_listen,
                "--bridge-chain",
                &alice_flag,
            ],
        );
        let bob_args: Vec<String> = vec![
            "--no-mine".into(),
            "--bootnode".into(),
            rsc_listen,
            "--bridge-chain".into(),
            bridge_flag(&bob_par),
        ];
        let args: Vec<&str> = bob_args.iter().map(String::as_str).collect();
        let bob = NodeProcess::start(dirs[3].path(), free_port(), &args);
        wait_connected(&bob);
        mine(&alice, 11);
        mine(&bob_par, 11);
        Parties {
            alice_par,
            bob_par,
            alice,
            bob,
            bob_args,
            alice_par_listen: par_listen,
            _dirs: dirs,
        }
    }

    /// Bob's RSC node again on its datadir, after `kill -9`.
    fn restart_bob(&mut self, datadir: std::path::PathBuf) {
        let args: Vec<&str> = self.bob_args.iter().map(String::as_str).collect();
        self.bob = NodeProcess::start(&datadir, free_port(), &args);
        wait_connected(&self.bob);
    }

    /// Alice's PAR node stopped and started again on the same ports: it
    /// writes a new RPC cookie, which her RSC node's bridge must pick up.
    fn restart_alice_par(&mut self) {
        let (dir, port) = (self.alice_par.datadir.clone(), self.alice_par.port);
        self.alice_par.child.kill().expect("kill");
        let _ = self.alice_par.child.wait();
        self.alice_par = NodeProcess::start_on(
            "par",
            &dir,
            port,
            &["--no-mine", "--no-mdns", "--listen", &self.alice_par_listen],
        );
    }

    /// Alice offers 5 RSC for 10 PAR and Bob accepts; returns the swap id.
    fn agree(&self) -> String {
        agree(&self.alice, &self.bob, "5 dev", "10 par-dev")
    }

    /// Mines RSC blocks (only) until Bob's PAR HTLC is broadcast.
    fn until_bob_funded(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while state(&self.bob, id)["state"] != "funded" {
            assert!(
                Instant::now() < deadline,
                "Bob never funded: {}",
                state(&self.bob, id)
            );
            mine(&self.alice, 1);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// `alice` offers `give` for `want` to `bob`, who accepts; returns the
/// swap id.
pub(crate) fn agree(alice: &NodeProcess, bob: &NodeProcess, give: &str, want: &str) -> String {
    let bob_peer = bob.json(&["rpc", "getnetworkinfo"])["peerid"]
        .as_str()
        .expect("peer id")
        .to_string();
    let offered = alice.cli(&["bridge", "swap", &bob_peer, give, want, "--no-wait"]);
    assert!(
        offered.status.success(),
        "{}",
        String::from_utf8_lossy(&offered.stderr)
    );
    let line = String::from_utf8_lossy(&offered.stdout).to_string();
    let id = line
        .split_whitespace()
        .nth(1)
        .expect("swap id")
        .trim_end_matches(':')
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let offers = bob.json(&["bridge", "offers"]);
        if offers
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x["id"] == id.as_str()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the offer never reached Bob");
        std::thread::sleep(Duration::from_millis(100));
    }
    bob.json(&["bridge", "accept", &id, "--no-wait"]);
    id
}

/// The states a swap that completes goes through, per role.
pub(crate) const INITIATOR_PATH: [&str; 7] = [
    "offered",
    "accepted",
    "funding",
    "funded",
    "peer_funded",
    "redeeming",
    "completed",
];
pub(crate) const PARTICIPANT_PATH: [&str; 7] = [
    "accepted",
    "peer_funded",
    "funding",
    "funded",
    "secret_seen",
    "redeeming",
    "completed",
];

/// The states a swap entered, from `bridge status`.
pub(crate) fn history(s: &Value) -> Vec<String> {
    s["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h[0].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Mines a block on `chains` until `done` holds, failing after 120 s.
fn mine_until(chains: &[&NodeProcess], what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 120 s");
        for c in chains {
            mine(c, 1);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn bridge_daemons_complete_a_swap_between_rsc_and_par() {
    let p = Parties::start();
    let Parties {
        alice_par,
        bob_par,
        alice,
        bob,
        ..
    } = &p;
    let (alice_par_before, bob_rsc_before) = (balance(alice_par), balance(bob));

    let id = p.agree();

    // A refund before T1 is refused with the height it opens at.
    let early = alice.cli(&["bridge", "refund", &id]);
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(!early.status.success());
    assert!(
        err.contains("refund is possible from height") || err.contains("nothing of ours"),
        "{err}"
    );

    // Blocks on both chains until both daemons are done.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (a, b) = (state(alice, &id), state(bob, &id));
        if a["state"] == "completed" && b["state"] == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "swap not done: alice {a}, bob {b}"
        );
        for s in [&a, &b] {
            assert_ne!(s["status"], "failed", "{s}");
        }
        mine(alice, 1);
        mine(bob_par, 1);
        std::thread::sleep(Duration::from_millis(300));
    }
    let a = state(alice, &id);
    let b = state(bob, &id);
    assert_eq!(history(&a), INITIATOR_PATH);
    assert_eq!(history(&b), PARTICIPANT_PATH);
    // Coins moved both ways, less fees; the wallets' balances follow once
    // the redeems are mined.
    mine(alice, 1);
    mine(bob_par, 1);
    std::thread::sleep(Duration::from_millis(500));
    let got_par = balance(alice_par) - alice_par_before;
    let got_rsc = balance(bob) - bob_rsc_before;
    assert!(got_par > 9.99 && got_par < 10.0, "Alice got {got_par} PAR");
    assert!(got_rsc > 4.99 && got_rsc < 5.0, "Bob got {got_rsc} RSC");
    assert_eq!(
        alice
            .json(&["bridge", "list", "completed"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn the_participant_refunds_by_itself_when_the_initiator_vanishes() {
    let p = Parties::start();
    let bob_par_before = total_balance(&p.bob_par);
    let id = p.agree();
    p.until_bob_funded(&id);
    // Alice's RSC node (and daemon) is gone before any PAR block confirms
    // Bob's HTLC, so she never redeems it. PAR blocks come from her PAR
    // node, so Bob's PAR wallet changes only by the swap.
    let Parties {
        alice,
        bob,
        bob_par,
        alice_par,
        ..
    } = p;
    alice.kill9();
    mine_until(&[&alice_par], "Bob's refund", || {
        state(&bob, &id)["state"] == "refunded"
    });
    let s = state(&bob, &id);
    let lock = s["refund_available_at"].as_u64().expect("lock");
    assert!(bob_par.height() > lock, "refunded before T2: {s}");
    mine(&alice_par, 1);
    std::thread::sleep(Duration::from_millis(500));
    // The 10 PAR came back; only the funding's and the refund's fees are gone.
    let lost = bob_par_before - total_balance(&bob_par);
    assert!((0.0..0.01).contains(&lost), "Bob lost {lost} PAR");
}

#[test]
fn a_participant_killed_after_the_initiator_redeems_redeems_after_restart() {
    let mut p = Parties::start();
    let id = p.agree();
    p.until_bob_funded(&id);
    let bob_dir = p.bob.datadir.clone();
    let bob_rsc_before = balance(&p.bob);
    let t1 = state(&p.bob, &id)["must_redeem_before"]
        .as_u64()
        .expect("T1");
    // kill -9 of Bob's RSC node (and daemon); Alice redeems his PAR,
    // revealing the secret, and completes.
    p.bob.child.kill().expect("kill");
    let _ = p.bob.child.wait();
    mine_until(&[&p.bob_par], "Alice's redeem", || {
        state(&p.alice, &id)["state"] == "completed"
    });
    // Bob comes back before T1 with only his datadir: his daemon finds the
    // secret on PAR and redeems Alice's RSC.
    p.restart_bob(bob_dir);
    assert!(p.alice.height() < t1);
    mine_until(&[&p.alice], "Bob's redeem after restart", || {
        state(&p.bob, &id)["state"] == "completed"
    });
    assert!(p.alice.height() < t1, "redeemed after T1");
    mine(&p.alice, 1);
    std::thread::sleep(Duration::from_millis(500));
    let got = balance(&p.bob) - bob_rsc_before;
    assert!(got > 4.99 && got < 5.0, "Bob got {got} RSC");
}

/// The newcomer's path: `localnet --chains rsc,par`, then the `bridge swap`
/// line it prints, which follows the swap to its end.
#[test]
fn localnet_with_two_chains_swaps_in_two_commands() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut localnet, rx) = crate::harness::spawn_localnet(
        dir.path(),
        &["--chains", "rsc,par", "--nodes", "2", "--base-port", "0"],
    );
    let mut lines = Vec::new();
    let swap_line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("localnet prints its nodes and the swap command within 60 s");
        if line.starts_with("Swap: ") {
            break line;
        }
        lines.push(line);
    };
    // node<i>  <network>  <url> …
    let url = |network: &str, i: usize| -> String {
        lines
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() > 2 && w[0] == format!("node{i}") && w[1] == network)
            .map(|w| w[2].to_string())
            .expect("node line")
    };
    let cli = |network: &str, i: usize, args: &[&str]| -> std::process::Output {
        Command::new(crate::harness::BIN)
            .args(["--network", network, "--datadir"])
            .arg(dir.path().join(format!("node{i}")))
            .args(["--rpc-url", &url(network, i)])
            .args(args)
            .output()
            .expect("run rusty-cli")
    };
    // Coins now rather than after 11 blocks at the miners' pace: RSC for
    // node 0, PAR for node 1.
    for (network, i) in [("dev", 0), ("par-dev", 1)] {
        let addr = cli(network, i, &["rpc", "getnewaddress"]);
        let addr = String::from_utf8_lossy(&addr.stdout).trim().to_string();
        let mined = cli(network, i, &["rpc", "generatetoaddress", "11", &addr]);
        assert!(
            mined.status.success(),
            "{}",
            String::from_utf8_lossy(&mined.stderr)
        );
    }
    // The printed command, as a user would paste it (quotes removed).
    let command = swap_line
        .trim_start_matches("Swap: rusty-cli ")
        .split("  (")
        .next()
        .expect("command")
        .to_string();
    let mut args: Vec<String> = Vec::new();
    let mut quoted: Option<String> = None;
    for w in command.split_whitespace() {
        match (&mut quoted, w.starts_with('"'), w.ends_with('"')) {
            (None, true, true) => args.push(w.trim_matches('"').to_string()),
            (None, true, false) => quoted = Some(w.trim_start_matches('"').to_string()),
            (Some(q), _, true) => {
                q.push(' ');
                q.push_str(w.trim_end_matches('"'));
                args.push(quoted.take().expect("quoted"));
            }
            (Some(q), _, false) => {
                q.push(' ');
                q.push_str(w);
            }
            (None, false, _) => args.push(w.to_string()),
        }
    }
    let mut swap = Command::new(crate::harness::BIN)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the swap");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = swap.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = swap.kill();
            let _ = localnet.kill();
            panic!("the swap did not end within 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = swap.wait_with_output().expect("output");
    let _ = localnet.kill();
    let _ = localnet.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("completed")),
        "{text}"
    );
}

#[test]
fn the_bridge_follows_a_restarted_chain_node_to_its_new_cookie() {
    let mut p = Parties::start();
    let cookie = p.alice_par.datadir.join("par-dev").join(".cookie");
    let before = std::fs::read_to_string(&cookie).expect("cookie");
    p.restart_alice_par();
    assert_ne!(std::fs::read_to_string(&cookie).expect("cookie"), before);
    wait_connected(&p.bob_par);
    // Alice's bridge asks her PAR node for an address at the offer: with
    // the old cookie that is a 401, then it reads the new one.
    let id = p.agree();
    mine_until(&[&p.alice, &p.bob_par], "the swap", || {
        state(&p.alice, &id)["state"] == "completed" && state(&p.bob, &id)["state"] == "completed"
    });
}
