//! The multi-node kit: mining, tips and waits over a [`LocalNet`], shared by
//! the integration tests (network, masternodes, media) and the benchmarks,
//! so each of them waits for peers and for agreement the same way.
//!
//! Waits poll every 50 ms up to a deadline and fail with
//! [`LocalNetError::Timeout`] saying what did not happen; callers choose the
//! deadline (tests: generous; benches: their own limits).

use std::time::Duration;

use rusty_shared_types::{Address, Hash256};

use crate::localnet::{LocalNet, LocalNetError};

const POLL: Duration = Duration::from_millis(50);

fn stopped(i: usize) -> LocalNetError {
    LocalNetError::Setup(format!("node {i}: the chain service has stopped"))
}

impl LocalNet {
    /// A new wallet address of node `i`.
    pub async fn address(&self, i: usize) -> Result<Address, LocalNetError> {
        self.node(i)
            .handle()
            .new_address()
            .await
            .map_err(|_| stopped(i))?
            .map_err(|e| LocalNetError::Setup(format!("node {i}: {e}")))
    }

    /// Mines `count` blocks on node `i`, paying its wallet; returns the new
    /// tip.
    pub async fn mine(&self, i: usize, count: u64) -> Result<Hash256, LocalNetError> {
        let addr = self.address(i).await?;
        let hashes = self
            .node(i)
            .handle()
            .generate(count, &addr, u64::MAX)
            .await
            .map_err(|e| LocalNetError::Setup(format!("node {i}: mining: {e}")))?;
        hashes
            .last()
            .copied()
            .ok_or_else(|| LocalNetError::Setup(format!("node {i} mined nothing")))
    }

    /// The tip of node `i`: hash and height.
    pub async fn tip(&self, i: usize) -> Result<(Hash256, u64), LocalNetError> {
        self.node(i)
            .handle()
            .query(|s| (s.chain().tip(), s.chain().height()))
            .await
            .map_err(|_| stopped(i))
    }

    /// Peers node `i` is connected to now (0 without networking).
    pub async fn peer_count(&self, i: usize) -> usize {
        match self.node(i).p2p() {
            Some(p) => p.net.peers().await.map(|v| v.len()).unwrap_or(0),
            None => 0,
        }
    }

    /// Waits until every node has at least `n` peers.
    pub async fn wait_peers(&self, n: usize, timeout: Duration) -> Result<(), LocalNetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for i in 0..self.len() {
            while self.peer_count(i).await < n {
                if tokio::time::Instant::now() > deadline {
                    return Err(LocalNetError::Timeout(format!(
                        "node {i} never reached {n} peers"
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(())
    }

    /// Waits until the nodes in `which` share one tip; returns it.
    pub async fn wait_synced_among(
        &self,
        which: &[usize],
        timeout: Duration,
    ) -> Result<(Hash256, u64), LocalNetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut tips = Vec::with_capacity(which.len());
            for &i in which {
                tips.push(self.tip(i).await?);
            }
            if let Some(first) = tips.first() {
                if tips.iter().all(|t| t == first) {
                    return Ok(*first);
                }
            } else {
                return Err(LocalNetError::Setup("no nodes to compare".into()));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(LocalNetError::Timeout(format!(
                    "nodes {which:?} did not converge: {tips:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every node shares one tip; returns it.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(Hash256, u64), LocalNetError> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.wait_synced_among(&all, timeout).await
    }
}
