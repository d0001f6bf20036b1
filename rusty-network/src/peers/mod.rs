//! The peer manager: a small `NetworkBehaviour` that sees every connection
//! first. It refuses banned peers and addresses and inbound connections over
//! the limit, and tracks each peer's connection state in the [`PeerDb`].
//! Scores and bans are changed by the network task ([`crate::service`]) when
//! the node reports what a peer did; dialing is driven from its heartbeat.

mod db;

use std::{
    collections::{HashMap, HashSet},
    convert::Infallible,
    task::{Context, Poll},
    time::Instant,
};

pub use db::{
    backoff, ip_of, peer_id_of, with_peer_id, without_peer_id, Ban, BanTarget, ConnectionState,
    PeerAction, PeerDb, PeerRecord, ScoreOutcome, BAN_THRESHOLD, MAX_ADDRS_PER_PEER,
};
use libp2p::{
    core::{transport::PortUse, Endpoint},
    swarm::{
        dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId,
};
use rand::rngs::StdRng;

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("peer {0} is banned")]
    BannedPeer(PeerId),
    #[error("address {0} is banned")]
    BannedAddr(Multiaddr),
    #[error("inbound connection limit ({0}) reached")]
    InboundLimit(usize),
    #[error("outbound connection limit ({0}) reached")]
    OutboundLimit(usize),
}

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_inbound: usize,
    pub max_outbound: usize,
}

/// The peer manager behaviour.
#[derive(Debug)]
pub struct PeerManager {
    pub db: PeerDb,
    pub limits: Limits,
    rng: StdRng,
    /// Peers the node asked to disconnect; not counted against limits.
    pub disconnecting: HashSet<PeerId>,
    /// Outbound dials to a known peer that have neither connected nor
    /// failed yet, whoever started them (the network task, Kademlia,
    /// request-response).
    dialing: HashMap<ConnectionId, PeerId>,
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl PeerManager {
    pub fn new(limits: Limits) -> Self {
        PeerManager {
            db: PeerDb::default(),
            limits,
            rng: rand::SeedableRng::from_entropy(),
            disconnecting: HashSet::new(),
            dialing: HashMap::new(),
        }
    }

    /// The dials to `peer` still in progress.
    pub fn pending_dials(&self, peer: &PeerId) -> HashSet<ConnectionId> {
        self.dialing
            .iter()
            .filter(|(_, p)| *p == peer)
            .map(|(id, _)| *id)
            .collect()
    }

    fn check_banned(&self, peer: &PeerId, addr: &Multiaddr) -> Result<(), ConnectionDenied> {
        let now = unix_now();
        if self.db.is_banned_peer(peer, now) {
            return Err(ConnectionDenied::new(Refused::BannedPeer(*peer)));
        }
        if self.db.is_banned_addr(addr, now) {
            return Err(ConnectionDenied::new(Refused::BannedAddr(addr.clone())));
        }
        Ok(())
    }

    fn is_persistent(&self, peer: &PeerId) -> bool {
        self.db.get(peer).is_some_and(|r| r.persistent)
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

impl NetworkBehaviour for PeerManager {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if self.db.is_banned_addr(remote, unix_now()) {
            return Err(ConnectionDenied::new(Refused::BannedAddr(remote.clone())));
        }
        Ok(())
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        _addrs: &[Multiaddr],
        _role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        // Every dial that gets here ends in `ConnectionEstablished` or
        // `DialFailure` (also when a later behaviour refuses it).
        if let Some(peer) = peer {
            self.dialing.insert(id, peer);
        }
        Ok(Vec::new())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_banned(&peer, remote)?;
        let already = self.db.get(&peer).is_some_and(|r| r.is_connected());
        if !already
            && !self.is_persistent(&peer)
            && self.db.connected_count(true) >= self.limits.max_inbound
        {
            return Err(ConnectionDenied::new(Refused::InboundLimit(
                self.limits.max_inbound,
            )));
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_banned(&peer, addr)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let now = Instant::now();
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.dialing.remove(&e.connection_id);
                // A connection established while the others close (it raced
                // with a disconnect) keeps the peer connected.
                let connected = self.db.get(&e.peer_id).is_some_and(|r| r.is_connected());
                if e.other_established > 0 && connected {
                    return;
                }
                self.db.on_connected(
                    e.peer_id,
                    e.endpoint.get_remote_address().clone(),
                    !e.endpoint.is_dialer(),
                    now,
                    unix_now(),
                );
            }
            FromSwarm::ConnectionClosed(e) if e.remaining_established == 0 => {
                self.disconnecting.remove(&e.peer_id);
                let rng = &mut self.rng;
                self.db.on_disconnected(e.peer_id, now, rng);
            }
            FromSwarm::DialFailure(e) => {
                self.dialing.remove(&e.connection_id);
                if let Some(peer) = e.peer_id {
                    let rng = &mut self.rng;
                    self.db.on_dial_failure(peer, now, rng);
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/10.0.0.1/tcp/{port}")
            .parse()
            .expect("multiaddr")
    }

    fn local() -> Multiaddr {
        "/ip4/127.0.0.1/tcp/1".parse().expect("multiaddr")
    }

    #[test]
    fn inbound_connections_over_the_limit_and_banned_ones_are_refused() {
        let mut pm = PeerManager::new(Limits {
            max_inbound: 1,
            max_outbound: 1,
        });
        let now = Instant::now();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        pm.db.on_connected(a, addr(1), true, now, 0);
        let id = ConnectionId::new_unchecked(1);
        assert!(pm
            .handle_established_inbound_connection(id, b, &local(), &addr(2))
            .is_err());
        // A persistent peer is let in anyway; a second connection of a
        // connected peer too.
        pm.db.set_persistent(c, addr(3), now);
        assert!(pm
            .handle_established_inbound_connection(id, c, &local(), &addr(3))
            .is_ok());
        assert!(pm
            .handle_established_inbound_connection(id, a, &local(), &addr(1))
            .is_ok());
        // Banned: by id, and by address before the handshake.
        pm.db.ban(
            BanTarget::Peer(c),
            Ban {
                created: 0,
                until: u64::MAX,
                reason: String::new(),
            },
        );
        assert!(pm
            .handle_established_inbound_connection(id, c, &local(), &addr(3))
            .is_err());
        assert!(pm
            .handle_established_outbound_connection(
                id,
                c,
                &addr(3),
                Endpoint::Dialer,
                PortUse::Reuse
            )
            .is_err());
        pm.db.ban(
            BanTarget::Ip("10.0.0.1".parse().expect("ip")),
            Ban {
                created: 0,
                until: u64::MAX,
                reason: String::new(),
            },
        );
        assert!(pm
            .handle_pending_inbound_connection(id, &local(), &addr(9))
            .is_err());
    }
}
