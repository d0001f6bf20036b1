//! Prometheus metrics: `GET /metrics` on `--metrics-bind`, in the
//! Prometheus text format (`prometheus-client`).
//!
//! Two kinds of series, one page:
//!
//! * **Instrumented** where the work happens, in a [`Registry`] built once:
//!   block validation time (the chain thread, [`ChainMetrics`]), RPC calls by
//!   method ([`RpcMetricsLayer`]), and libp2p's own metrics (bandwidth by
//!   protocol and direction, connections, gossipsub, Kademlia, identify,
//!   ping), which `rusty_network::start_with_metrics` registers under
//!   `rusty_libp2p_*`.
//! * **Read at scrape time** from what the node already keeps ([`health`], also
//!   RPC `getnodehealth`):
//!   height, reorgs, mempool, peers by direction, masternodes by status,
//!   ChainLock lag, DKG sessions by phase, media counters and live lag, and
//!   the process's CPU, memory and file descriptors. A scrape asks the chain
//!   service one query and the network task one question; nothing is
//!   polled between scrapes.
//!
//! Names are `rusty_*` in base units (seconds, bytes), counters end in
//! `_total`, and no label carries a peer or content id: label values come
//! from fixed sets (an unknown RPC method is counted as `other`).

use std::{sync::Arc, time::Instant};

use futures::future::BoxFuture;
use jsonrpsee::{server::middleware::rpc::RpcServiceT, types::Request, MethodResponse};
use prometheus_client::{
    encoding::{text, EncodeLabelSet},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use tokio::net::TcpListener;

use crate::rpc::RpcContext;

/// Label of a series counted by RPC method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
}

type HistogramFamily = Family<MethodLabel, Histogram, fn() -> Histogram>;

fn rpc_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// What the chain thread records: one observation per submitted block.
#[derive(Clone, Debug)]
pub struct ChainMetrics {
    pub block_validation_seconds: Histogram,
}

/// RPC calls by method, recorded by [`RpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct RpcMetrics {
    requests: Family<MethodLabel, Counter>,
    seconds: HistogramFamily,
}

impl RpcMetrics {
    /// Counts one call of `method` that took `seconds`.
    pub fn observe(&self, method: &str, seconds: f64) {
        // Only methods the node serves become label values, so a client
        // cannot grow the series without bound by inventing names.
        let method = if crate::rpc::params::signature(method).is_some() {
            method
        } else {
            "other"
        };
        let label = MethodLabel {
            method: method.to_owned(),
        };
        self.requests.get_or_create(&label).inc();
        self.seconds.get_or_create(&label).observe(seconds);
    }
}

/// The node's metrics: the instrumented registry and the handles the
/// instrumented places hold.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub chain: ChainMetrics,
    pub rpc: RpcMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rusty");
        let chain = ChainMetrics {
            // 50 µs to about 1.6 s.
            block_validation_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
        };
        registry.register(
            "block_validation_seconds",
            "Time to validate and connect (or store) one submitted block",
            chain.block_validation_seconds.clone(),
        );
        let rpc = RpcMetrics {
            requests: Family::default(),
            seconds: Family::new_with_constructor(rpc_histogram as fn() -> Histogram),
        };
        registry.register(
            "rpc_requests",
            "JSON-RPC calls by method",
            rpc.requests.clone(),
        );
        registry.register(
            "rpc_request_duration_seconds",
            "JSON-RPC call durations by method",
            rpc.seconds.clone(),
        );
        Metrics {
            registry,
            chain,
            rpc,
        }
    }

    /// Where libp2p registers its own metrics: the top registry, since
    /// libp2p adds its own `libp2p` prefix (`rusty_libp2p_*`; a sub-registry
    /// here made them `rusty_libp2p_libp2p_*`).
    pub fn libp2p_registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The whole page: the instrumented series, then a snapshot of the
    /// node read now.
    pub async fn render(&self, ctx: &RpcContext) -> String {
        let snapshot = registry_of(&health(ctx).await);
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = text::encode_registry(&mut out, &self.registry);
        let _ = text::encode_registry(&mut out, &snapshot);
        let _ = text::encode_eof(&mut out);
        out
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The node's health, read now: what `/metrics` shows beside the
/// instrumented series, and what RPC `getnodehealth` returns as JSON.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Health {
    /// `None` when the chain service did not answer (shutting down).
    pub chain: Option<ChainHealth>,
    /// `None` without P2P.
    pub peers: Option<PeersHealth>,
    /// This node's DKG sessions by phase.
    pub dkg_sessions: std::collections::BTreeMap<String, u64>,
    /// `None` without the media layer.
    pub media: Option<MediaHealth>,
    pub process: ProcessHealth,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ChainHealth {
    pub height: u64,
    pub reorgs: u64,
    pub mempool_transactions: usize,
    pub mempool_bytes: usize,
    pub chainlock_height: Option<u64>,
    /// Blocks between the tip and the best ChainLock (the height when none).
    pub chainlock_lag_blocks: u64,
    pub masternodes_valid: usize,
    pub masternodes_banned: usize,
    pub masternodes_revoked: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PeersHealth {
    pub inbound: usize,
    pub outbound: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct MediaHealth {
    pub chunks_ok: u64,
    pub chunks_bad: u64,
    pub replies_not_found: u64,
    pub replies_busy: u64,
    /// Chunk requests that timed out or failed: stalls.
    pub requests_failed: u64,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub requests_shed: u64,
    pub store_bytes: u64,
    pub live_streams: u64,
    /// The largest 95th-percentile segment delay over the live streams.
    pub live_segment_lag_seconds: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcessHealth {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
}

fn gauge(v: impl TryInto<i64>) -> ConstGauge<i64> {
    ConstGauge::new(v.try_into().unwrap_or(i64::MAX))
}

fn gauge_family<L>(values: impl IntoIterator<Item = (L, i64)>) -> Family<L, Gauge>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<L, Gauge>::default();
    for (label, v) in values {
        family.get_or_create(&label).set(v);
    }
    family
}

fn counter_family<L>(values: impl IntoIterator<Item = (L, u64)>) -> Family<L, Counter>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<L, Counter>::default();
    for (label, v) in values {
        family.get_or_create(&label).inc_by(v);
    }
    family
}

/// Reads the node's health: one chain query, one network question, the
/// quorum view, the media counters and live streams, `/proc/self`.
pub async fn health(ctx: &RpcContext) -> Health {
    let chain = ctx
        .with_state(|s| {
            let chain = s.chain();
            let mn = chain.mn();
            let height = chain.height();
            let chainlock_height = chain.best_chainlock().map(|cl| cl.height);
            ChainHealth {
                height,
                reorgs: s.reorg_count(),
                mempool_transactions: s.mempool().len(),
                mempool_bytes: s.mempool().total_size(),
                chainlock_height,
                chainlock_lag_blocks: height.saturating_sub(chainlock_height.unwrap_or(0)),
                masternodes_valid: mn.valid_count(),
                masternodes_banned: mn
                    .entries()
                    .filter(|e| !e.revoked && e.pose_ban_height.is_some())
                    .count(),
                masternodes_revoked: mn.entries().filter(|e| e.revoked).count(),
            }
        })
        .await
        .ok();
    let mut h = Health {
        chain,
        process: process(),
        ..Health::default()
    };
    if let Some(p2p) = &ctx.p2p {
        if let Ok(info) = p2p.net.info().await {
            h.peers = Some(PeersHealth {
                inbound: info.inbound,
                outbound: info.outbound,
            });
        }
        if let Ok(sessions) = p2p.llmq.view.sessions.lock() {
            for s in sessions.iter() {
                *h.dkg_sessions.entry(s.phase.to_owned()).or_default() += 1;
            }
        }
    }
    if let Some(media) = &ctx.media {
        let s = media.stats();
        let mut m = MediaHealth {
            chunks_ok: s.chunks_ok,
            chunks_bad: s.bad_chunks,
            replies_not_found: s.replies_not_found,
            replies_busy: s.busy_replies_received,
            requests_failed: s.requests_failed,
            bytes_down: s.downloaded_bytes,
            bytes_up: s.uploaded_bytes,
            requests_shed: s.shed_requests,
            store_bytes: s.store_bytes,
            ..MediaHealth::default()
        };
        let mut lag_ms = 0u64;
        for stream in media.live_streams().await {
            let status = stream.status().await;
            m.live_streams += 1;
            lag_ms = lag_ms.max(status.latency_p95_ms.unwrap_or(0));
        }
        m.live_segment_lag_seconds = lag_ms as f64 / 1000.0;
        h.media = Some(m);
    }
    h
}

/// `health` as Prometheus series.
fn registry_of(h: &Health) -> Registry {
    let mut r = Registry::with_prefix("rusty");
    if let Some(c) = &h.chain {
        r.register(
            "chain_height",
            "Height of the active chain's tip",
            gauge(c.height),
        );
        r.register(
            "chain_reorgs",
            "Reorganisations (a block of the active chain disconnected) since start",
            ConstCounter::new(c.reorgs),
        );
        r.register(
            "mempool_transactions",
            "Transactions in the mempool",
            gauge(c.mempool_transactions),
        );
        r.register(
            "mempool_bytes",
            "Serialized size of the mempool's transactions",
            gauge(c.mempool_bytes),
        );
        r.register(
            "chainlock_lag_blocks",
            "Blocks between the tip and the best ChainLock (the height when none)",
            gauge(c.chainlock_lag_blocks),
        );
        r.register(
            "chainlock_height",
            "Height of the best ChainLock (-1 when none)",
            ConstGauge::new(
                c.chainlock_height
                    .map_or(-1, |h| i64::try_from(h).unwrap_or(i64::MAX)),
            ),
        );
        r.register(
            "masternodes",
            "Registered masternodes by status",
            gauge_family([
                (StatusLabel { status: "valid" }, c.masternodes_valid as i64),
                (
                    StatusLabel { status: "banned" },
                    c.masternodes_banned as i64,
                ),
                (
                    StatusLabel { status: "revoked" },
                    c.masternodes_revoked as i64,
                ),
            ]),
        );
    }
    if let Some(p) = &h.peers {
        r.register(
            "peers",
            "Connected peers by direction",
            gauge_family([
                (
                    DirectionLabel {
                        direction: "inbound",
                    },
                    p.inbound as i64,
                ),
                (
                    DirectionLabel {
                        direction: "outbound",
                    },
                    p.outbound as i64,
                ),
            ]),
        );
    }
    r.register(
        "dkg_sessions",
        "This node's DKG sessions by phase",
        gauge_family(h.dkg_sessions.iter().map(|(phase, n)| {
            (
                PhaseLabel {
                    phase: phase.clone(),
                },
                *n as i64,
            )
        })),
    );
    if let Some(m) = &h.media {
        r.register(
            "media_chunks",
            "Chunk replies a download received, by result (failed: timed out or refused; a stall)",
            counter_family([
                (ResultLabel { result: "ok" }, m.chunks_ok),
                (ResultLabel { result: "bad" }, m.chunks_bad),
                (
                    ResultLabel {
                        result: "not_found",
                    },
                    m.replies_not_found,
                ),
                (ResultLabel { result: "busy" }, m.replies_busy),
                (ResultLabel { result: "failed" }, m.requests_failed),
            ]),
        );
        r.register(
            "media_stalls",
            "Chunk requests that timed out or failed (the provider is backed off)",
            ConstCounter::new(m.requests_failed),
        );
        r.register(
            "media_bytes",
            "Verified media bytes received (down) and sent (up)",
            counter_family([
                (DirectionLabel { direction: "down" }, m.bytes_down),
                (DirectionLabel { direction: "up" }, m.bytes_up),
            ]),
        );
        r.register(
            "media_requests_shed",
            "Media requests dropped because every serving slot was taken",
            ConstCounter::new(m.requests_shed),
        );
        r.register(
            "media_store_bytes",
            "Bytes in the content store",
            gauge(m.store_bytes),
        );
        r.register(
            "media_live_streams",
            "Live streams broadcast or watched",
            gauge(m.live_streams),
        );
        r.register(
            "media_live_segment_lag_seconds",
            "The largest 95th-percentile delay of a live segment (cut to arrival) over the streams",
            ConstGauge::new(m.live_segment_lag_seconds),
        );
    }
    let p = &h.process;
    if let Some(v) = p.cpu_seconds {
        r.register(
            "process_cpu_seconds",
            "User and system CPU time of the node process",
            ConstCounter::new(v),
        );
    }
    if let Some(v) = p.resident_memory_bytes {
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the node process",
            gauge(v),
        );
    }
    if let Some(v) = p.threads {
        r.register("process_threads", "Threads of the node process", gauge(v));
    }
    if let Some(v) = p.open_fds {
        r.register("process_open_fds", "Open file descriptors", gauge(v));
    }
    r
}

/// The process's CPU time, memory, threads and open files, from
/// `/proc/self` (Linux; elsewhere `None`s).
fn process() -> ProcessHealth {
    // USER_HZ, the unit of /proc's CPU times: 100 on every Linux ABI.
    const USER_HZ: f64 = 100.0;
    let mut p = ProcessHealth::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // After the command name (which may hold spaces and parentheses):
        // utime and stime are the 12th and 13th fields.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
                p.cpu_seconds = Some((user + system) as f64 / USER_HZ);
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let field = |key: &str| {
            status.lines().find_map(|l| {
                let v = l.strip_prefix(key)?.trim();
                v.strip_suffix("kB").unwrap_or(v).trim().parse::<u64>().ok()
            })
        };
        p.resident_memory_bytes = field("VmRSS:").map(|kib| kib.saturating_mul(1024));
        p.threads = field("Threads:");
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        p.open_fds = Some(dir.count() as u64);
    }
    p
}

/// Binds the metrics listener (`--metrics-bind`).
pub async fn bind(
    addr: std::net::SocketAddr,
) -> std::io::Result<(TcpListener, std::net::SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ctx: Arc<RpcContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::{http::header, routing::get, Router};
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let (metrics, ctx) = (metrics.clone(), ctx.clone());
            async move {
                let page = metrics.render(&ctx).await;
                ([(header::CONTENT_TYPE, content_type())], page)
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A jsonrpsee RPC middleware that counts calls and their durations by
/// method into [`RpcMetrics`].
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer(pub Option<RpcMetrics>);

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> RpcMetricsService<S> {
        RpcMetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around each call.
#[derive(Clone, Debug)]
pub struct RpcMetricsService<S> {
    inner: S,
    /// Cheap to clone: the families are shared handles.
    metrics: Option<RpcMetrics>,
}

impl<'a, S> RpcServiceT<'a> for RpcMetricsService<S>
where
    S: RpcServiceT<'a> + Send + Sync + Clone + 'static,
{
    type Future = BoxFuture<'a, MethodResponse>;

    fn call(&self, request: Request<'a>) -> Self::Future {
        let inner = self.inner.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let Some(metrics) = metrics else {
                return inner.call(request).await;
            };
            let method = request.method_name().to_owned();
            let started = Instant::now();
            let response = inner.call(request).await;
            metrics.observe(&method, started.elapsed().as_secs_f64());
            response
        })
    }
}

/// The `Content-Type` of the page: `prometheus-client` writes the
/// OpenMetrics text format (which Prometheus scrapes natively).
pub fn content_type() -> &'static str {
    "application/openmetrics-text; version=1.0.0; charset=utf-8"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_rpc_methods_share_one_label() {
        let m = Metrics::new();
        m.rpc.observe("getblockcount", 0.001);
        m.rpc.observe("no_such_method_1", 0.001);
        m.rpc.observe("no_such_method_2", 0.001);
        let mut out = String::new();
        text::encode(&mut out, &m.registry).unwrap();
        assert!(
            out.contains("rusty_rpc_requests_total{method=\"getblockcount\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("rusty_rpc_requests_total{method=\"other\"} 2"),
            "{out}"
        );
        assert!(!out.contains("no_such_method"), "{out}");
    }
}
