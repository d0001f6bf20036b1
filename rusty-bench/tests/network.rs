//! The network benchmark at a tiny size: it must run end to end and every
//! block and gossip transaction must arrive. Structural checks only; the
//! figures themselves are never asserted (this is not a timed test).

use rusty_bench::network::{run_network_bench, NetBenchConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_bench_runs_at_a_tiny_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = NetBenchConfig {
        blocks: 20,
        txs_per_block: 5,
        gossip_txs: 10,
    };
    let r = run_network_bench(cfg.clone(), dir.path())
        .await
        .expect("benchmark runs");
    // 100 txs fit one fan-out coinbase; then the maturity blocks.
    let maturity = rusty_shared_types::Network::Dev.params().coinbase_maturity;
    assert_eq!(r.chain_blocks, 20 + 1 + maturity);
    assert_eq!(r.chain_txs, 100);
    assert!(r.chain_bytes > 0);
    assert!(r.tcp_mb_per_sec > 0.0);
    for (s, seeds) in [(&r.sync_1, 1), (&r.sync_3, 3)] {
        assert_eq!(s.seeds, seeds);
        assert_eq!(s.blocks, r.chain_blocks, "every block synced");
        assert_eq!(s.txs, r.chain_txs);
        assert!(s.peers_at_end >= 1);
        assert!(s.secs > 0.0 && s.first_block_secs <= s.secs);
        assert!(s.blocks_per_sec() > 0.0 && s.tx_per_sec() > 0.0 && s.mb_per_sec() > 0.0);
        assert!(r.ratio(s) > 0.0);
    }
    let g = &r.gossip;
    assert_eq!(g.nodes, 5);
    assert_eq!(g.sent, 10);
    assert_eq!(g.expected, 40);
    assert_eq!(g.arrived, g.expected, "every gossip tx reached every node");
    assert!(g.p50_ms > 0.0 && g.p50_ms <= g.p95_ms && g.p95_ms <= g.max_ms);
    let text = r.to_string();
    assert!(text.contains("sync from 3 peers"), "{text}");
    assert_eq!(r.config, cfg);
}
