//! PAR and ARC are chains run by this same binary under their own specs:
//! a node of one chain never talks to a node of another, and each keeps its
//! own addresses and genesis.

use std::time::{Duration, Instant};

use crate::harness::{free_port, NodeProcess};

fn listen(p: u16) -> String {
    format!("/ip4/127.0.0.1/tcp/{p}")
}

fn connections(n: &NodeProcess) -> u64 {
    n.json(&["rpc", "getconnectioncount"])
        .as_u64()
        .expect("connection count")
}

#[test]
fn nodes_of_different_chains_never_connect() {
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let p2p_par = free_port();
    let la = listen(p2p_par);
    let par = NodeProcess::start_on(
        "par",
        dirs[0].path(),
        free_port(),
        &["--no-mine", "--no-mdns", "--listen", &la],
    );
    let follower = |network: &'static str, dir: &std::path::Path| {
        let own = listen(free_port());
        NodeProcess::start_on(
            network,
            dir,
            free_port(),
            &[
                "--no-mine",
                "--no-mdns",
                "--listen",
                &own,
                "--bootnode",
                &la,
            ],
        )
    };
    // Both dial the PAR node; only the PAR follower may stay connected.
    let rsc = follower("dev", dirs[1].path());
    let par2 = follower("par", dirs[2].path());

    let deadline = Instant::now() + Duration::from_secs(60);
    while connections(&par2) < 1 {
        assert!(Instant::now() < deadline, "PAR nodes never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Identify runs right after the handshake; give the RSC node's dials
    // (it retries its bootnode) time to be refused more than once.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(connections(&rsc), 0, "an RSC node kept a PAR peer");
    assert_eq!(connections(&par), 1, "the PAR node kept an RSC peer");

    // Each chain has its own names, prefixes and genesis.
    let info = |n: &NodeProcess| n.json(&["rpc", "getblockchaininfo"]);
    assert_eq!(info(&par)["chain"], "par-dev");
    assert_eq!(info(&rsc)["chain"], "dev");
    let genesis = |n: &NodeProcess| n.json(&["rpc", "getblockhash", "0"]);
    assert_ne!(genesis(&par), genesis(&rsc));
    let par_addr = par.json(&["rpc", "getnewaddress"]);
    let rsc_addr = rsc.json(&["rpc", "getnewaddress"]);
    let par_addr = par_addr.as_str().expect("address");
    assert!(par_addr.starts_with("dpar1"), "{par_addr}");

    // A block mined on PAR reaches the PAR follower and never the RSC node,
    // and an RSC address is not a PAR address.
    par.json(&["rpc", "generatetoaddress", "2", par_addr]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while par2.height() < 2 {
        assert!(Instant::now() < deadline, "the PAR follower did not sync");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rsc.height(), 0);
    let refused = par.cli(&[
        "rpc",
        "generatetoaddress",
        "1",
        rsc_addr.as_str().expect("address"),
    ]);
    assert!(!refused.status.success(), "PAR mined to an RSC address");
    assert_eq!(par.height(), 2);
}
