//! Reachability and NAT traversal: AutoNAT v2 (is this node reachable?),
//! circuit relay v2 (a node behind a NAT is reached through a public
//! relay) and DCUtR (the relayed connection is upgraded to a direct one by
//! a coordinated hole punch).
//!
//! - Every node runs the AutoNAT v2 client and server, the relay client and
//!   DCUtR. The relay server runs unless `--relay-server=false`; libp2p's
//!   relay only advertises itself while the node has a confirmed external
//!   address (AutoNAT v2, or `--external-addr`), so in effect public nodes
//!   and masternodes relay and nodes behind NAT do not.
//! - A node that AutoNAT found unreachable (a test failed and none passed)
//!   reserves a slot on up to [`MAX_RESERVATIONS`] connected relays, and is
//!   then reachable at `<relay>/p2p-circuit/p2p/<id>`.
//! - Relayed circuits are limited (2 min, 128 KiB each way, by the relay):
//!   they carry control traffic and small requests. `media` and `blocks`
//!   requests are refused for a peer reachable only through a relay, so the
//!   downloader and sync go to other peers meanwhile; once DCUtR succeeds
//!   the relayed connections to that peer are closed and everything moves
//!   to the direct one.

use std::collections::{BTreeSet, HashMap};

use libp2p::{
    autonat, dcutr, multiaddr::Protocol as AddrProtocol, relay, swarm::ConnectionId, StreamProtocol,
};

use super::*;

/// Relays a node behind NAT keeps a reservation on, at most.
pub const MAX_RESERVATIONS: usize = 2;
/// The relay protocol a relay advertises through identify.
pub const HOP_PROTOCOL: &str = "/libp2p/circuit/relay/0.2.0/hop";

/// Whether others can dial this node, as AutoNAT v2 found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reachability {
    /// Not tested yet.
    #[default]
    Unknown,
    /// An external address was confirmed (dialed back by a peer, or given
    /// with `--external-addr`).
    Public,
    /// Dial-back tests failed and none passed: behind a NAT or firewall.
    Private,
}

impl Reachability {
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "public",
            Reachability::Private => "private",
        }
    }
}

/// What the task knows of NAT traversal, for `getnetworkinfo`.
#[derive(Debug, Default)]
pub(super) struct NatState {
    pub(super) autonat_failed: u64,
    /// Relay addresses (`…/p2p/<relay>/p2p-circuit`) reserved or asked.
    pub(super) reservations: BTreeSet<Multiaddr>,
    /// Of those, the ones the relay accepted.
    pub(super) reserved: BTreeSet<Multiaddr>,
    pub(super) punches_succeeded: u64,
    pub(super) punches_failed: u64,
    /// Every open connection per peer, with its remote address.
    pub(super) connections: HashMap<PeerId, HashMap<ConnectionId, Multiaddr>>,
    /// When a relayed connection to a peer opened, until a direct one does
    /// (for the time to a direct one).
    relayed_since: HashMap<PeerId, Instant>,
    /// Milliseconds from a relayed connection to a direct one, the last
    /// time a peer got one.
    pub(super) last_punch_ms: Option<u64>,
    /// Connected peers that said (identify) they relay.
    relays: BTreeSet<PeerId>,
}

/// NAT traversal figures for `getnetworkinfo`.
#[derive(Debug, Clone, Default)]
pub struct NatInfo {
    pub reachability: Reachability,
    pub external_addrs: Vec<Multiaddr>,
    pub relay_server: bool,
    /// Relay circuit addresses this node listens on (accepted reservations).
    pub relay_reservations: Vec<Multiaddr>,
    pub relayed_connections: usize,
    pub direct_connections: usize,
    pub hole_punches_succeeded: u64,
    pub hole_punches_failed: u64,
    /// From a relayed connection to a direct one, the last time,
    /// milliseconds.
    pub last_hole_punch_ms: Option<u64>,
}

pub(super) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, AddrProtocol::P2pCircuit))
}

impl Task {
    pub(super) fn reachability(&self) -> Reachability {
        // A relay circuit address counts as external to libp2p (others can
        // dial it), not as reachable.
        if self.swarm.external_addresses().any(|a| !is_relayed(a)) {
            Reachability::Public
        } else if self.nat.autonat_failed > 0 {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }

    pub(super) fn nat_info(&self) -> NatInfo {
        let (mut relayed, mut direct) = (0, 0);
        for conns in self.nat.connections.values() {
            for a in conns.values() {
                if is_relayed(a) {
                    relayed += 1;
                } else {
                    direct += 1;
                }
            }
        }
        NatInfo {
            reachability: self.reachability(),
            external_addrs: self
                .swarm
                .external_addresses()
                .filter(|a| !is_relayed(a))
                .cloned()
                .collect(),
            relay_server: self.swarm.behaviour().relay_server.is_enabled(),
            relay_reservations: self.nat.reserved.iter().cloned().collect(),
            relayed_connections: relayed,
            direct_connections: direct,
            hole_punches_succeeded: self.nat.punches_succeeded,
            hole_punches_failed: self.nat.punches_failed,
            last_hole_punch_ms: self.nat.last_punch_ms,
        }
    }

    /// True when every connection to `peer` goes through a relay.
    pub(super) fn only_relayed(&self, peer: &PeerId) -> bool {
        self.nat
            .connections
            .get(peer)
            .is_some_and(|c| !c.is_empty() && c.values().all(is_relayed))
    }

    /// The address of a direct (not relayed) connection to `peer`.
    pub(super) fn direct_addr(&self, peer: &PeerId) -> Option<Multiaddr> {
        self.nat
            .connections
            .get(peer)?
            .values()
            .find(|a| !is_relayed(a))
            .cloned()
    }

    pub(super) fn on_nat_connection(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        addr: &Multiaddr,
        open: bool,
    ) {
        let relayed = is_relayed(addr);
        if open {
            if relayed {
                self.nat
                    .relayed_since
                    .entry(peer)
                    .or_insert_with(Instant::now);
            } else {
                self.on_direct_connection(peer);
            }
            self.nat
                .connections
                .entry(peer)
                .or_default()
                .insert(id, addr.clone());
        } else if let Some(c) = self.nat.connections.get_mut(&peer) {
            c.remove(&id);
            if c.is_empty() {
                self.nat.connections.remove(&peer);
                self.nat.relayed_since.remove(&peer);
                self.nat.relays.remove(&peer);
                // A relay that went away holds no reservation of ours any
                // more: forget it, so this node can reserve elsewhere (else
                // two lost relays would leave it unreachable for good).
                let was_relay = |a: &Multiaddr| peer_id_of(a) == Some(peer);
                if self.nat.reservations.iter().any(was_relay) {
                    self.nat.reservations.retain(|a| !was_relay(a));
                    self.nat.reserved.retain(|a| !was_relay(a));
                    let relays: Vec<PeerId> = self.nat.relays.iter().copied().collect();
                    for r in relays {
                        self.reserve_on(r);
                    }
                }
            }
        }
    }

    /// A direct connection to a peer we reach through a relay (the
    /// punch worked, whichever side reports it, or a plain dial did):
    /// everything moves to it, and the relayed connections close, so no
    /// request is sent on them any more.
    fn on_direct_connection(&mut self, peer: PeerId) {
        let Some(since) = self.nat.relayed_since.remove(&peer) else {
            return;
        };
        let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.nat.last_punch_ms = Some(ms);
        info!(target: "net", %peer, after_ms = ms, "direct connection: closing the relayed ones");
        let relayed: Vec<ConnectionId> = self
            .nat
            .connections
            .get(&peer)
            .map(|c| {
                c.iter()
                    .filter(|(_, a)| is_relayed(a))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default();
        for id in relayed {
            self.swarm.close_connection(id);
        }
    }

    pub(super) fn on_autonat_event(&mut self, e: autonat::v2::client::Event) {
        match e.result {
            Ok(()) => {
                info!(target: "net", addr = %e.tested_addr, server = %e.server, "reachable: dialed back");
            }
            Err(err) => {
                self.nat.autonat_failed += 1;
                info!(target: "net", addr = %e.tested_addr, server = %e.server, error = %err, "not reachable at this address");
                let relays: Vec<PeerId> = self.nat.relays.iter().copied().collect();
                for r in relays {
                    self.reserve_on(r);
                }
            }
        }
    }

    /// A peer told us (identify) what it supports: if it relays, remember
    /// it, and if this node is unreachable, reserve a slot on it.
    pub(super) fn consider_relay(&mut self, peer: PeerId, protocols: &[StreamProtocol]) {
        if protocols.iter().any(|p| p.as_ref() == HOP_PROTOCOL) {
            self.nat.relays.insert(peer);
            self.reserve_on(peer);
        } else {
            self.nat.relays.remove(&peer);
        }
    }

    /// Reserves a slot on relay `peer` if this node is unreachable and has
    /// fewer than [`MAX_RESERVATIONS`].
    fn reserve_on(&mut self, peer: PeerId) {
        if self.reachability() != Reachability::Private
            || self.nat.reservations.len() >= MAX_RESERVATIONS
        {
            return;
        }
        // The address we reached it at (a relay must be dialable).
        let Some(addr) = self
            .swarm
            .behaviour()
            .peers
            .db
            .get(&peer)
            .and_then(|r| r.remote.clone())
            .filter(|a| !is_relayed(a))
        else {
            return;
        };
        let circuit = with_peer_id(&without_peer_id(&addr), peer).with(AddrProtocol::P2pCircuit);
        if self.nat.reservations.contains(&circuit) {
            return;
        }
        match self.swarm.listen_on(circuit.clone()) {
            Ok(_) => {
                info!(target: "net", relay = %peer, addr = %circuit, "unreachable: reserving a relay slot");
                self.nat.reservations.insert(circuit);
            }
            Err(e) => {
                warn!(target: "net", relay = %peer, error = %e, "could not listen through the relay")
            }
        }
    }

    pub(super) fn on_relay_client_event(&mut self, e: relay::client::Event) {
        match e {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    info!(target: "net", relay = %relay_peer_id, "relay reservation accepted");
                }
                for a in &self.nat.reservations {
                    if peer_id_of(a) == Some(relay_peer_id) {
                        self.nat.reserved.insert(a.clone());
                    }
                }
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                debug!(target: "net", relay = %relay_peer_id, "outbound circuit through a relay");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                debug!(target: "net", peer = %src_peer_id, "inbound circuit through a relay");
            }
        }
    }

    pub(super) fn on_relay_server_event(&mut self, e: relay::Event) {
        debug!(target: "net", event = ?e, "relay server");
    }

    pub(super) fn on_dcutr_event(&mut self, e: dcutr::Event) {
        let peer = e.remote_peer_id;
        match e.result {
            Ok(_) => {
                self.nat.punches_succeeded += 1;
                info!(target: "net", %peer, "hole punch succeeded: direct connection");
            }
            Err(err) => {
                self.nat.punches_failed += 1;
                info!(target: "net", %peer, error = %err, "hole punch failed: the relayed connection stays for small requests");
            }
        }
    }
}
