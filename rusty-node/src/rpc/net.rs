//! Network methods: `getpeerinfo`, `getnetworkinfo`, `getconnectioncount`,
//! `addnode`, `disconnectnode`, `setban`, `listbanned`, `clearbanned`.
//!
//! Result shapes follow Bitcoin Core; addresses are libp2p multiaddrs
//! (`/ip4/1.2.3.4/tcp/8433/p2p/12D3Koo…`) and peers are also named by their
//! peer id. On a node started without networking every method answers
//! [`codes::CLIENT_P2P_DISABLED`], except `getnetworkinfo` and
//! `getconnectioncount`, which report no connections.

use std::{net::SocketAddr, time::Duration};

use std::sync::Arc;

use jsonrpsee::{
    core::{async_trait, RpcResult},
    types::ErrorObjectOwned,
};
use rusty_network::{
    peers::{peer_id_of, with_peer_id},
    BanInfo, BanTarget, Multiaddr, NetworkError, PeerId, PeerInfo,
};
use rusty_shared_types::Amount;
use serde_json::{json, Value};

use super::{api::net::NetApiServer, codes, json as render, rpc_error, RpcContext};
use crate::p2p::{P2pHandle, PeerActivity, PeerChain};

/// `setban` without a `bantime` (or with 0): 24 hours, as Bitcoin Core.
pub const DEFAULT_BAN_SECS: u64 = 24 * 3600;

// The identify agent, also when the node has no network.
use rusty_network::config::DEFAULT_AGENT as AGENT;

/// Implements [`NetApiServer`] over the node's RPC context.
#[derive(Debug, Clone)]
pub struct NetRpc(pub Arc<RpcContext>);

#[async_trait]
impl NetApiServer for NetRpc {
    async fn get_peer_info(&self) -> RpcResult<Vec<Value>> {
        let ctx = &self.0;
        let p2p = p2p(ctx)?;
        let peers = p2p.net.peers().await.map_err(net_stopped)?;
        let now = rusty_core::now();
        Ok(peers
            .iter()
            .map(|p| {
                let view = &p2p.view;
                let chain = view.peer(&p.peer_id);
                peer_json(p, chain.as_ref(), view.activity(&p.peer_id), now)
            })
            .collect())
    }

    async fn get_node_health(&self) -> RpcResult<crate::metrics::Health> {
        Ok(crate::metrics::health(&self.0).await)
    }

    async fn get_network_info(&self) -> RpcResult<Value> {
        let ctx = &self.0;
        let relay_fee = ctx.with_state(|s| s.mempool().min_fee_rate()).await?;
        let relay_fee = render::amount(Amount::from_units(relay_fee).unwrap_or_default());
        let networks = ["ipv4", "ipv6"].map(|name| {
            json!({
                "name": name,
                "limited": false,
                "reachable": true,
                "proxy": "",
                "proxy_randomize_credentials": false,
            })
        });
        let mut v = json!({
            "version": client_version(env!("CARGO_PKG_VERSION")),
            "subversion": AGENT,
            // Core's protocol version is a number; ours is the version of
            // the libp2p protocols, whose full name is `protocol`.
            "protocolversion": rusty_network::behaviour::PROTOCOL_VERSION,
            "protocol": rusty_network::behaviour::protocol_version(ctx.network.name()),
            "localrelay": true,
            "timeoffset": 0,
            "networkactive": false,
            "connections": 0,
            "connections_in": 0,
            "connections_out": 0,
            "relayfee": relay_fee,
            "incrementalfee": relay_fee,
            // NODE_NETWORK: this node serves the whole chain.
            "localservices": "0000000000000001",
            "localservicesnames": ["NETWORK"],
            // libp2p listens on IPv4 and IPv6 (TCP and QUIC); no proxy.
            "networks": networks,
            "localaddresses": [],
            "warnings": [],
        });
        if let Some(p2p) = &ctx.p2p {
            let info = p2p.net.info().await.map_err(net_stopped)?;
            let local: Vec<String> = info
                .listen_addrs
                .iter()
                .map(|a| with_peer_id(a, info.peer_id).to_string())
                .collect();
            let local_addresses: Vec<Value> = info
                .listen_addrs
                .iter()
                .filter_map(ip_and_port)
                .map(|(address, port)| json!({ "address": address, "port": port, "score": 0 }))
                .collect();
            let extra = json!({
                "subversion": info.agent,
                "protocol": info.protocol_version,
                "networkactive": true,
                "peerid": info.peer_id.to_string(),
                "connections": info.inbound.saturating_add(info.outbound),
                "connections_in": info.inbound,
                "connections_out": info.outbound,
                "max_connections_in": info.max_inbound,
                "max_connections_out": info.max_outbound,
                "localaddresses": local_addresses,
                // The same, dialable: with the transport and our peer id.
                "localmultiaddrs": local,
                "mdns": info.mdns,
                "shed": { "medium": info.shed_medium, "low": info.shed_low },
                "nat": nat_json(&info.nat),
                // Bitcoin Core's flag, from AutoNAT (see `nat`).
                "reachability": info.nat.reachability.as_str(),
            });
            if let (Value::Object(base), Value::Object(extra)) = (&mut v, extra) {
                base.extend(extra);
            }
        }
        Ok(v)
    }

    async fn get_connection_count(&self) -> RpcResult<usize> {
        let ctx = &self.0;
        match &ctx.p2p {
            None => Ok(0),
            Some(p2p) => {
                let info = p2p.net.info().await.map_err(net_stopped)?;
                Ok(info.inbound.saturating_add(info.outbound))
            }
        }
    }

    async fn add_node(&self, node: String, command: String) -> RpcResult<()> {
        let ctx = &self.0;
        let command = AddNodeCommand::parse(&command)?;
        let addr = parse_node_addr(&node)?;
        let p2p = p2p(ctx)?;
        match command {
            AddNodeCommand::Add | AddNodeCommand::OneTry => {
                p2p.net
                    .add_peer(addr)
                    .await
                    .map_err(|e| rpc_error(codes::MISC_ERROR, e))?;
            }
            AddNodeCommand::Remove => {
                let peer = peer_id_of(&addr).ok_or_else(|| {
                    rpc_error(
                        codes::INVALID_PARAMETER,
                        format!("addnode remove needs the peer id: '{node}' has no /p2p/<peer id> suffix"),
                    )
                })?;
                let was_connected = p2p.net.disconnect(peer).await.map_err(net_stopped)?;
                if !was_connected {
                    return Err(rpc_error(
                        codes::CLIENT_NODE_NOT_CONNECTED,
                        format!("Node {peer} is not connected (it will not be redialed either)"),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn disconnect_node(
        &self,
        address: Option<String>,
        node_id: Option<u64>,
    ) -> RpcResult<()> {
        let ctx = &self.0;
        let target = DisconnectTarget::parse(address.as_deref(), node_id)?;
        let p2p = p2p(ctx)?;
        let peer = match target {
            DisconnectTarget::Peer(peer) => Some(peer),
            DisconnectTarget::Addr(addr) => {
                let peers = p2p.net.peers().await.map_err(net_stopped)?;
                peers
                    .iter()
                    .find(|p| same_address(&p.addr, &addr))
                    .map(|p| p.peer_id)
            }
            DisconnectTarget::Id(id) => {
                let peers = p2p.net.peers().await.map_err(net_stopped)?;
                peers.iter().find(|p| p.id == id).map(|p| p.peer_id)
            }
        };
        let disconnected = match peer {
            Some(peer) => p2p.net.disconnect(peer).await.map_err(net_stopped)?,
            None => false,
        };
        if disconnected {
            Ok(())
        } else {
            Err(rpc_error(
                codes::CLIENT_NODE_NOT_CONNECTED,
                "Node not found in connected nodes",
            ))
        }
    }

    async fn set_ban(
        &self,
        target: String,
        command: String,
        bantime: Option<i64>,
        absolute: Option<bool>,
    ) -> RpcResult<()> {
        let ctx = &self.0;
        let target = parse_ban_target(&target)?;
        let command = BanCommand::parse(&command)?;
        let p2p = p2p(ctx)?;
        match command {
            BanCommand::Add => {
                let duration = ban_duration(bantime, absolute.unwrap_or(false), rusty_core::now())?;
                let bans = p2p.net.bans().await.map_err(net_stopped)?;
                if bans.iter().any(|b| b.target == target) {
                    return Err(rpc_error(
                        codes::CLIENT_NODE_ALREADY_ADDED,
                        format!("Error: {target} is already banned"),
                    ));
                }
                p2p.net
                    .ban(target, duration, "manual ban (setban)")
                    .await
                    .map_err(net_stopped)?;
            }
            BanCommand::Remove => {
                if !p2p.net.unban(target).await.map_err(net_stopped)? {
                    return Err(rpc_error(
                        codes::CLIENT_INVALID_IP_OR_SUBNET,
                        format!("Error: Unban failed. {target} was not banned"),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn list_banned(&self) -> RpcResult<Vec<Value>> {
        let ctx = &self.0;
        let bans = p2p(ctx)?.net.bans().await.map_err(net_stopped)?;
        let now = rusty_core::now();
        Ok(bans.iter().map(|b| ban_json(b, now)).collect())
    }

    async fn clear_banned(&self) -> RpcResult<()> {
        let ctx = &self.0;
        p2p(ctx)?.net.clear_bans().await.map_err(net_stopped)?;
        Ok(())
    }
}

/// The network side of the node, or the error saying there is none.
fn p2p(ctx: &RpcContext) -> Result<&P2pHandle, ErrorObjectOwned> {
    ctx.p2p.as_ref().ok_or_else(|| {
        rpc_error(
            codes::CLIENT_P2P_DISABLED,
            "P2P networking is disabled on this node (it was started with --no-network or p2p = false)",
        )
    })
}

fn net_stopped(_: NetworkError) -> ErrorObjectOwned {
    rpc_error(codes::MISC_ERROR, "the network task has stopped")
}

/// Bitcoin Core's integer version: `10000 * major + 100 * minor + patch`.
fn client_version(version: &str) -> u64 {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    let (major, minor, patch) = (next(), next(), next());
    major
        .saturating_mul(10_000)
        .saturating_add(minor.saturating_mul(100))
        .saturating_add(patch)
}

/// Reachability, relays and hole punching, for `getnetworkinfo`.
fn nat_json(n: &rusty_network::service::nat::NatInfo) -> Value {
    json!({
        "reachability": n.reachability.as_str(),
        "externaladdresses": n.external_addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "relayserver": n.relay_server,
        "relayreservations": n.relay_reservations.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "relayedconnections": n.relayed_connections,
        "directconnections": n.direct_connections,
        "holepunches": { "succeeded": n.hole_punches_succeeded, "failed": n.hole_punches_failed },
        "lastholepunchms": n.last_hole_punch_ms,
    })
}

fn peer_json(p: &PeerInfo, chain: Option<&PeerChain>, activity: PeerActivity, now: u64) -> Value {
    let mut v = json!({
        "id": p.id,
        "peerid": p.peer_id.to_string(),
        "addr": p.addr.to_string(),
        "network": if p.addr.to_string().starts_with("/ip6/") { "ipv6" } else { "ipv4" },
        "services": "0000000000000001",
        "servicesnames": ["NETWORK"],
        "relaytxes": true,
        "timeoffset": 0,
        "permissions": [],
        "last_block": activity.last_block,
        "last_transaction": activity.last_transaction,
        "inbound": p.inbound,
        "connection_type": if p.inbound { "inbound" } else { "outbound-full-relay" },
        "conntime": now.saturating_sub(p.connected_secs),
        "subver": p.agent.clone().unwrap_or_default(),
        "score": p.score,
        "persistent": p.persistent,
        // Every connection to it goes through a relay circuit (small
        // requests only until a hole punch gives a direct one).
        "relayed": p.relayed,
        // Bitcoin Core's -1: not known yet (the peer's status has not
        // arrived).
        "synced_headers": chain.map_or(-1, |c| i64::try_from(c.height).unwrap_or(i64::MAX)),
        "synced_blocks": chain.map_or(-1, |c| i64::try_from(c.height).unwrap_or(i64::MAX)),
        "inflight": chain.map_or_else(Vec::new, |c| c.in_flight.clone()),
        // Peers on another protocol version are never connected.
        "version": rusty_network::behaviour::PROTOCOL_VERSION,
        // The height it reported (its status), -1 before it did.
        "startingheight": chain.map_or(-1, |c| i64::try_from(c.height).unwrap_or(i64::MAX)),
        // No headers presync (that is Core's anti-DoS for low-work
        // headers; here headers come from one chosen peer): Core's -1.
        "presynced_headers": -1,
    });
    if let Value::Object(o) = &mut v {
        if let Some(ping) = p.ping {
            o.insert("pingtime".into(), json!(ping.as_secs_f64()));
        }
        if let Some(c) = chain {
            o.insert("tip".into(), json!(c.tip.to_string()));
            o.insert("chainwork".into(), json!(hex::encode(c.chain_work)));
        }
    }
    v
}

/// The IP address and port of a `/ip4|ip6/…/tcp|udp/…` multiaddr.
fn ip_and_port(addr: &Multiaddr) -> Option<(String, u16)> {
    use rusty_network::multiaddr::Protocol;
    let mut ip = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(a.to_string()),
            Protocol::Ip6(a) => ip = Some(a.to_string()),
            Protocol::Tcp(port) | Protocol::Udp(port) => return ip.map(|ip| (ip, port)),
            _ => {}
        }
    }
    None
}

fn ban_json(b: &BanInfo, now: u64) -> Value {
    json!({
        "address": b.target.as_subnet(),
        "ban_created": b.created,
        "banned_until": b.until,
        "ban_duration": b.until.saturating_sub(b.created),
        "time_remaining": b.until.saturating_sub(now),
        "reason": b.reason,
    })
}

/// The `command` of `addnode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddNodeCommand {
    /// Connect and keep the peer connected.
    Add,
    /// Disconnect and stop redialing.
    Remove,
    /// Connect (the network layer keeps every added peer, so as `add`).
    OneTry,
}

impl AddNodeCommand {
    pub fn parse(s: &str) -> Result<Self, ErrorObjectOwned> {
        match s {
            "add" => Ok(AddNodeCommand::Add),
            "remove" => Ok(AddNodeCommand::Remove),
            "onetry" => Ok(AddNodeCommand::OneTry),
            _ => Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("addnode command must be add, remove or onetry, got \"{s}\""),
            )),
        }
    }
}

/// The `command` of `setban`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanCommand {
    Add,
    Remove,
}

impl BanCommand {
    pub fn parse(s: &str) -> Result<Self, ErrorObjectOwned> {
        match s {
            "add" => Ok(BanCommand::Add),
            "remove" => Ok(BanCommand::Remove),
            _ => Err(rpc_error(
                codes::INVALID_PARAMETER,
                format!("setban command must be add or remove, got \"{s}\""),
            )),
        }
    }
}

/// A node address for `addnode`: a multiaddr, or for convenience a
/// Bitcoin-style `ip:port`, taken as TCP.
pub fn parse_node_addr(s: &str) -> Result<Multiaddr, ErrorObjectOwned> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        let ip = match sa.ip() {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
        };
        return format!("{ip}/tcp/{}", sa.port())
            .parse()
            .map_err(|_| bad_node_addr(s));
    }
    match s.parse::<Multiaddr>() {
        Ok(a) if a.iter().next().is_some() => Ok(a),
        _ => Err(bad_node_addr(s)),
    }
}

fn bad_node_addr(s: &str) -> ErrorObjectOwned {
    rpc_error(
        codes::INVALID_PARAMETER,
        format!(
            "'{s}' is not a multiaddr: expected e.g. /ip4/192.0.2.1/tcp/8433/p2p/<peer id> \
             (or 192.0.2.1:8433)"
        ),
    )
}

/// Which peer `disconnectnode` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectTarget {
    /// By peer id (given alone or as the `/p2p/` suffix of a multiaddr).
    Peer(PeerId),
    /// The peer connected at this address (no `/p2p/` suffix).
    Addr(Multiaddr),
    /// By the `id` getpeerinfo shows.
    Id(u64),
}

impl DisconnectTarget {
    /// Bitcoin Core's `disconnectnode ( "address" nodeid )`: exactly one of
    /// a non-empty address and a node id.
    pub fn parse(address: Option<&str>, node_id: Option<u64>) -> Result<Self, ErrorObjectOwned> {
        let address = address.map(str::trim).filter(|a| !a.is_empty());
        match (address, node_id) {
            (Some(_), Some(_)) => Err(rpc_error(
                codes::INVALID_PARAMS,
                "Only one of address and nodeid should be provided.",
            )),
            (None, None) => Err(rpc_error(
                codes::INVALID_PARAMS,
                "give a peer id, a multiaddr, or \"\" and the node id from getpeerinfo",
            )),
            (None, Some(id)) => Ok(DisconnectTarget::Id(id)),
            (Some(a), None) => {
                if let Ok(peer) = a.parse::<PeerId>() {
                    return Ok(DisconnectTarget::Peer(peer));
                }
                let addr = parse_node_addr(a).map_err(|_| {
                    rpc_error(
                        codes::INVALID_PARAMETER,
                        format!("'{a}' is neither a peer id nor a multiaddr"),
                    )
                })?;
                Ok(match peer_id_of(&addr) {
                    Some(peer) => DisconnectTarget::Peer(peer),
                    None => DisconnectTarget::Addr(addr),
                })
            }
        }
    }
}

/// Two addresses naming the same endpoint, `/p2p/` suffixes aside.
fn same_address(a: &Multiaddr, b: &Multiaddr) -> bool {
    rusty_network::peers::without_peer_id(a) == rusty_network::peers::without_peer_id(b)
}

/// A `setban` target: a peer id, an IP address, or a multiaddr with one.
pub fn parse_ban_target(s: &str) -> Result<BanTarget, ErrorObjectOwned> {
    s.trim().parse::<BanTarget>().map_err(|e| {
        rpc_error(
            codes::CLIENT_INVALID_IP_OR_SUBNET,
            format!("Error: Invalid IP/peer: {e}"),
        )
    })
}

/// How long a `setban add` lasts: `bantime` seconds (0 or absent: 24 h), or
/// with `absolute` until the unix time `bantime`.
pub fn ban_duration(
    bantime: Option<i64>,
    absolute: bool,
    now: u64,
) -> Result<Duration, ErrorObjectOwned> {
    let t = bantime.unwrap_or(0);
    if t < 0 {
        return Err(rpc_error(
            codes::INVALID_PARAMETER,
            format!("bantime must not be negative, got {t}"),
        ));
    }
    let t = t.unsigned_abs();
    if absolute {
        if t <= now {
            return Err(rpc_error(
                codes::INVALID_PARAMETER,
                "Error: Absolute timestamp is in the past",
            ));
        }
        return Ok(Duration::from_secs(t.saturating_sub(now)));
    }
    Ok(Duration::from_secs(if t == 0 {
        DEFAULT_BAN_SECS
    } else {
        t
    }))
}

#[cfg(test)]
mod tests;
