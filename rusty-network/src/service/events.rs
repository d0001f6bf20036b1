//! Events from the swarm: connections, behaviour events, gossip with its
//! validation verdicts, and the request-response protocols (sync, direct,
//! media) with their rate limits.

use libp2p::metrics::Recorder;

use super::*;

impl Task {
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(b) => self.on_behaviour_event(b),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                info!(target: "net", %address, "listening");
                self.listen_addrs.push((listener_id, address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|(_, a)| *a != address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.dial_ended(peer_id, connection_id);
                let addr = endpoint.get_remote_address().clone();
                self.on_nat_connection(peer_id, connection_id, &addr, true);
                if endpoint.is_dialer() {
                    let base = without_peer_id(&addr);
                    if let Some(pos) = self
                        .anonymous_bootnodes
                        .iter()
                        .position(|a| without_peer_id(&a.addr) == base)
                    {
                        self.anonymous_bootnodes.remove(pos);
                        self.swarm.behaviour_mut().peers.db.set_persistent(
                            peer_id,
                            base.clone(),
                            Instant::now(),
                        );
                    }
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, base);
                }
                if num_established.get() == 1 {
                    self.store_dirty = true;
                    self.next_conn_id += 1;
                    self.conn_ids.insert(peer_id, self.next_conn_id);
                    debug!(target: "net", peer = %peer_id, %addr, inbound = !endpoint.is_dialer(), "connected");
                    self.emit(
                        Priority::High,
                        NetworkEvent::PeerConnected {
                            peer: peer_id,
                            addr,
                            inbound: !endpoint.is_dialer(),
                        },
                    );
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                cause,
                ..
            } => {
                self.on_nat_connection(
                    peer_id,
                    connection_id,
                    endpoint.get_remote_address(),
                    false,
                );
                if num_established == 0 {
                    debug!(target: "net", peer = %peer_id, ?cause, "disconnected");
                    self.conn_ids.remove(&peer_id);
                    self.limiter.remove_peer(&peer_id);
                    self.emit(
                        Priority::High,
                        NetworkEvent::PeerDisconnected { peer: peer_id },
                    );
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id,
                connection_id,
                error,
            } => {
                debug!(target: "net", peer = ?peer_id, %error, "dial failed");
                if let Some(peer) = peer_id {
                    self.dial_ended(peer, connection_id);
                }
                if peer_id.is_none() {
                    let now = Instant::now();
                    let rng = self.swarm.behaviour_mut().peers.rng();
                    for a in &mut self.anonymous_bootnodes {
                        // Pending dials were parked 10 s ahead; back off.
                        if a.next_dial > now {
                            a.next_dial = now + crate::peers::backoff(a.failures, rng);
                            a.failures = a.failures.saturating_add(1).min(16);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match &event {
            BehaviourEvent::Gossipsub(e) => self.metrics.record(e),
            BehaviourEvent::Kad(e) => self.metrics.record(e),
            BehaviourEvent::Identify(e) => self.metrics.record(e),
            BehaviourEvent::Ping(e) => self.metrics.record(e),
            _ => {}
        }
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, message),
            BehaviourEvent::Gossipsub(_) => {}
            BehaviourEvent::Status(e) => self.on_sync_event(Protocol::Status, e),
            BehaviourEvent::Headers(e) => self.on_sync_event(Protocol::Headers, e),
            BehaviourEvent::Blocks(e) => self.on_sync_event(Protocol::Blocks, e),
            BehaviourEvent::Direct(e) => self.on_sync_event(Protocol::Direct, e),
            BehaviourEvent::Media(e) => self.on_sync_event(Protocol::Media, e),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != protocol_version(&self.chain) {
                    info!(target: "net", peer = %peer_id, theirs = %info.protocol_version,
                          "disconnecting a peer of another chain");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let now = Instant::now();
                for addr in info
                    .listen_addrs
                    .iter()
                    .take(crate::peers::MAX_ADDRS_PER_PEER)
                {
                    if is_dialable(addr) {
                        self.swarm
                            .behaviour_mut()
                            .peers
                            .db
                            .add_address(peer_id, addr.clone(), now);
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                }
                self.swarm.behaviour_mut().peers.db.set_info(
                    &peer_id,
                    Some(info.agent_version.chars().take(128).collect()),
                    None,
                );
                self.consider_relay(peer_id, &info.protocols);
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::RelayClient(e) => self.on_relay_client_event(e),
            BehaviourEvent::RelayServer(e) => self.on_relay_server_event(e),
            BehaviourEvent::Dcutr(e) => self.on_dcutr_event(e),
            BehaviourEvent::AutonatClient(e) => self.on_autonat_event(e),
            BehaviourEvent::AutonatServer(_) => {}
            BehaviourEvent::Ping(ping::Event { peer, result, .. }) => {
                if let Ok(rtt) = result {
                    self.swarm
                        .behaviour_mut()
                        .peers
                        .db
                        .set_info(&peer, None, Some(rtt));
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) => {
                let now = Instant::now();
                for a in addresses.iter() {
                    self.swarm
                        .behaviour_mut()
                        .peers
                        .db
                        .add_address(peer, a.clone(), now);
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) => self.on_kad_query(id, result, step.last),
            BehaviourEvent::Kad(_) => {}
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                let now = Instant::now();
                for (peer, addr) in list {
                    debug!(target: "net", %peer, %addr, "mDNS discovered");
                    self.swarm
                        .behaviour_mut()
                        .peers
                        .db
                        .add_address(peer, addr.clone(), now);
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                }
            }
            BehaviourEvent::Mdns(_) => {}
            BehaviourEvent::Peers(never) => match never {},
        }
    }

    pub(super) fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        let Some(topic) = Topic::from_hash(&self.chain, &message.topic) else {
            self.verdict(&id, &source, Acceptance::Reject);
            self.report(
                source,
                PeerAction::LowTolerance,
                "gossip on an unknown topic",
            );
            return;
        };
        let kind = match topic {
            Topic::Blocks => Kind::BlockGossip,
            Topic::ChainLocks => Kind::ChainLockGossip,
            Topic::Quorum => Kind::QuorumGossip,
            Topic::Media => Kind::MediaGossip,
            // Governance is not subscribed yet.
            Topic::Txs | Topic::Governance => Kind::TxGossip,
        };
        if let Verdict::Refused { penalise } = self.limiter.check(source, kind, Instant::now()) {
            self.verdict(&id, &source, Acceptance::Ignore);
            if penalise {
                self.report(
                    source,
                    PeerAction::HighTolerance,
                    "gossip rate limit exceeded",
                );
            }
            return;
        }
        let event = NetworkEvent::Gossip {
            topic,
            source,
            author: message.source,
            id: id.clone(),
            data: message.data,
        };
        if !self.emit(topic.priority(), event) {
            // Shed: the node is busy; let the message expire unforwarded.
            self.verdict(&id, &source, Acceptance::Ignore);
        }
    }

    /// Hands a verdict on a gossip message to gossipsub (only `Accept`
    /// forwards it).
    pub(super) fn verdict(&mut self, id: &MessageId, source: &PeerId, acceptance: Acceptance) {
        let a = match acceptance {
            Acceptance::Accept => MessageAcceptance::Accept,
            Acceptance::Ignore => MessageAcceptance::Ignore,
            Acceptance::Reject => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, a);
    }

    pub(super) fn on_sync_event(
        &mut self,
        protocol: Protocol,
        event: request_response::Event<Request, Response>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                let kind = match protocol {
                    Protocol::Status => Kind::StatusRequest,
                    Protocol::Headers => Kind::HeadersRequest,
                    Protocol::Blocks => Kind::BlocksRequest,
                    Protocol::Direct => Kind::DirectRequest,
                    Protocol::Media => Kind::MediaRequest,
                };
                if let Verdict::Refused { penalise } =
                    self.limiter.check(peer, kind, Instant::now())
                {
                    // Dropping the channel tells the peer nothing; it times
                    // out, as a flood deserves.
                    if penalise {
                        self.report(
                            peer,
                            PeerAction::MidTolerance,
                            "request rate limit exceeded",
                        );
                    }
                    return;
                }
                // Media requests never delay blocks: low priority, shed
                // first. A shed request's channel is dropped, so the peer
                // learns at once that it got no answer.
                let priority = if protocol == Protocol::Media {
                    Priority::Low
                } else {
                    Priority::High
                };
                self.emit(
                    priority,
                    NetworkEvent::Request {
                        peer,
                        request,
                        responder: Responder {
                            protocol,
                            request_id,
                            channel,
                        },
                    },
                );
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&(protocol, request_id)) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                use request_response::OutboundFailure as F;
                let e = match error {
                    F::Timeout => RequestError::Timeout,
                    F::ConnectionClosed | F::DialFailure => RequestError::ConnectionClosed,
                    F::UnsupportedProtocols => RequestError::Unsupported,
                    F::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        self.report(peer, PeerAction::Fatal, "malformed response");
                        RequestError::Malformed
                    }
                    F::Io(e) => RequestError::Other(e.to_string()),
                };
                if let Some(reply) = self.pending.remove(&(protocol, request_id)) {
                    let _ = reply.send(Err(e));
                }
            }
            Event::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                if let Some(done) = self.responding.remove(&(protocol, request_id)) {
                    let _ = done.send(());
                }
                if let request_response::InboundFailure::Io(e) = &error {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.report(peer, PeerAction::Fatal, "malformed request");
                    }
                }
            }
            Event::ResponseSent { request_id, .. } => {
                if let Some(done) = self.responding.remove(&(protocol, request_id)) {
                    let _ = done.send(());
                }
            }
        }
    }
}
