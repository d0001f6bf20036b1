//! The swarm task's side of [`super::NetworkHandle`]: the loop that owns
//! the swarm, and each [`super::Command`] applied to it (dials, requests,
//! gossip, reports and bans, providers). Kept apart from the event side so
//! each file reads as one direction of traffic.

use super::*;

impl Task {
    pub(super) async fn run(
        mut self,
        mut high: mpsc::Receiver<Command>,
        mut normal: mpsc::Receiver<Command>,
    ) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = high.recv() => match cmd {
                    Some(cmd) => if self.on_command(cmd).is_break() {
                        break;
                    },
                    None => break,
                },
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = heartbeat.tick() => self.heartbeat(),
                Some(cmd) = normal.recv() => if self.on_command(cmd).is_break() {
                    break;
                },
            }
        }
        debug!(target: "net", "network task stopped");
    }

    /// Hands an event to the node; false if it was shed (medium and low
    /// priority, queue full).
    pub(super) fn emit(&mut self, priority: Priority, event: NetworkEvent) -> bool {
        let (queue, shed) = match priority {
            Priority::High => return self.events_high.send(event).is_ok(),
            Priority::Medium => (&self.events_medium, &mut self.shed_medium),
            Priority::Low => (&self.events_low, &mut self.shed_low),
        };
        let sent = queue.try_send(event).is_ok();
        if !sent {
            *shed += 1;
        }
        sent
    }

    pub(super) fn behaviour_for(
        &mut self,
        p: Protocol,
    ) -> &mut request_response::Behaviour<crate::codec::SyncCodec> {
        let b = self.swarm.behaviour_mut();
        match p {
            Protocol::Status => &mut b.status,
            Protocol::Headers => &mut b.headers,
            Protocol::Blocks => &mut b.blocks,
            Protocol::Direct => &mut b.direct,
            Protocol::Media => &mut b.media,
        }
    }

    /// Runs a command; `Break` after `Shutdown`.
    pub(super) fn on_command(&mut self, cmd: Command) -> ControlFlow<()> {
        match cmd {
            Command::Publish { topic, data, reply } => {
                let t = topic.ident(&self.chain);
                let published = self.swarm.behaviour_mut().gossipsub.publish(t, data);
                debug!(target: "net", ?topic, result = ?published.as_ref().map(|_| ()), "publish");
                let result = match published {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
                    // Nobody to tell yet: not an error for the node.
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(()),
                    Err(e) => Err(e.to_string()),
                };
                if let Some(r) = reply {
                    let _ = r.send(result);
                }
            }
            Command::Validate {
                id,
                source,
                acceptance,
            } => self.verdict(&id, &source, acceptance),
            Command::Request {
                peer,
                request,
                reply,
            } => match self.aborted_dials.get_mut(&peer) {
                Some(aborted) => aborted.requests.push((request, reply)),
                None => self.send_request(peer, request, reply),
            },
            Command::Respond {
                responder,
                response,
                done,
            } => {
                let p = responder.protocol;
                // The requester may have gone away: nothing to do then (a
                // waiting caller sees its `done` dropped).
                let sent = self
                    .behaviour_for(p)
                    .send_response(responder.channel, response);
                if let (Ok(()), Some(done)) = (sent, done) {
                    self.responding.insert((p, responder.request_id), done);
                }
            }
            Command::AddAddress { peer, addr } => {
                let base = without_peer_id(&addr);
                if peer_id_of(&addr).is_some_and(|p| p != peer)
                    || peer == *self.swarm.local_peer_id()
                    || base.is_empty()
                {
                    debug!(target: "net", %peer, %addr, "ignoring a direct address");
                } else {
                    self.direct_addrs.add(peer, base.clone());
                    // Every behaviour's address cache, so requests on any
                    // protocol can dial it too.
                    self.swarm.add_peer_address(peer, base);
                }
            }
            Command::Report {
                peer,
                action,
                reason,
            } => self.report(peer, action, &reason),
            Command::StartProviding { key, reply } => {
                let routable = self.has_routable_peer();
                let kad = &mut self.swarm.behaviour_mut().kad;
                let r = match kad.start_providing(key.clone()) {
                    Ok(_) => {
                        if !routable {
                            // The query finds nobody to store the record at;
                            // publish again once there is someone.
                            self.unpublished.insert(key);
                        }
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(r);
            }
            Command::StopProviding { key } => {
                self.unpublished.remove(&key);
                self.swarm.behaviour_mut().kad.stop_providing(&key);
            }
            Command::GetProviders { key, found } => {
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                self.provider_queries.insert(
                    id,
                    ProviderQuery {
                        found,
                        seen: HashSet::new(),
                    },
                );
            }
            Command::AddPeer { addr, reply } => {
                let r = if addr.iter().next().is_none() {
                    Err("empty address".to_owned())
                } else {
                    self.add_peer(addr, true);
                    Ok(())
                };
                let _ = reply.send(r);
            }
            Command::Disconnect { peer, reply } => {
                // An explicit disconnect also ends "keep connected".
                self.swarm
                    .behaviour_mut()
                    .peers
                    .db
                    .set_not_persistent(&peer);
                let ok = self.disconnect(peer);
                let _ = reply.send(ok);
            }
            Command::Ban {
                target,
                duration,
                reason,
                reply,
            } => {
                self.ban(target, duration, reason);
                let _ = reply.send(());
            }
            Command::Unban { target, reply } => {
                let ok = self.swarm.behaviour_mut().peers.db.unban(&target);
                if ok {
                    info!(target: "net", %target, "ban lifted");
                    self.save_store();
                }
                let _ = reply.send(ok);
            }
            Command::ClearBans(reply) => {
                self.swarm.behaviour_mut().peers.db.clear_bans();
                self.save_store();
                let _ = reply.send(());
            }
            Command::ListBans(reply) => {
                let mut bans: Vec<BanInfo> = self
                    .swarm
                    .behaviour()
                    .peers
                    .db
                    .bans()
                    .map(|(t, b)| BanInfo {
                        target: *t,
                        created: b.created,
                        until: b.until,
                        reason: b.reason.clone(),
                    })
                    .collect();
                bans.sort_by_key(|b| (b.created, b.target));
                let _ = reply.send(bans);
            }
            Command::Peers(reply) => {
                let now = Instant::now();
                let mut peers: Vec<PeerInfo> = self
                    .swarm
                    .behaviour()
                    .peers
                    .db
                    .connected()
                    .map(|(p, r)| {
                        let (since, inbound) = match r.state {
                            crate::peers::ConnectionState::Connected { since, inbound } => {
                                (since, inbound)
                            }
                            _ => (now, false),
                        };
                        PeerInfo {
                            id: self.conn_ids.get(p).copied().unwrap_or(0),
                            peer_id: *p,
                            // A direct connection's address once there is
                            // one (a peer first reached through a relay).
                            addr: self
                                .direct_addr(p)
                                .or_else(|| r.remote.clone())
                                .unwrap_or_else(Multiaddr::empty),
                            inbound,
                            connected_secs: now.saturating_duration_since(since).as_secs(),
                            score: r.score,
                            ping: r.ping,
                            relayed: self.only_relayed(p),
                            agent: r.agent.clone(),
                            persistent: r.persistent,
                        }
                    })
                    .collect();
                peers.sort_by_key(|p| p.id);
                let _ = reply.send(peers);
            }
            Command::Info(reply) => {
                let db = &self.swarm.behaviour().peers.db;
                let peer_id = *self.swarm.local_peer_id();
                let info = NetworkInfo {
                    peer_id,
                    listen_addrs: self.listen_addrs.iter().map(|(_, a)| a.clone()).collect(),
                    inbound: db.connected_count(true),
                    outbound: db.connected_count(false),
                    max_inbound: self.config.max_inbound(),
                    max_outbound: self.config.max_outbound(),
                    protocol_version: protocol_version(&self.chain),
                    agent: self.config.agent.clone(),
                    mdns: self.swarm.behaviour().mdns.is_enabled(),
                    shed_medium: self.shed_medium,
                    shed_low: self.shed_low,
                    nat: self.nat_info(),
                };
                let _ = reply.send(info);
            }
            Command::Shutdown(reply) => {
                self.save_store();
                let _ = reply.send(());
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Adds a peer to keep connected (bootnode, `addnode`).
    pub(super) fn add_peer(&mut self, addr: Multiaddr, dial_now: bool) {
        let now = Instant::now();
        match peer_id_of(&addr) {
            Some(peer) => {
                let base = without_peer_id(&addr);
                self.swarm
                    .behaviour_mut()
                    .peers
                    .db
                    .set_persistent(peer, base.clone(), now);
                self.swarm.behaviour_mut().kad.add_address(&peer, base);
            }
            None => {
                if !self.anonymous_bootnodes.iter().any(|a| a.addr == addr) {
                    self.anonymous_bootnodes.push(AnonymousPeer {
                        addr,
                        failures: 0,
                        next_dial: now,
                    });
                }
            }
        }
        if dial_now {
            self.dial_due();
        }
    }

    pub(super) fn report(&mut self, peer: PeerId, action: PeerAction, reason: &str) {
        let now = Instant::now();
        let outcome = self
            .swarm
            .behaviour_mut()
            .peers
            .db
            .report(peer, action, now);
        debug!(target: "net", %peer, ?action, reason, "peer reported");
        if outcome == ScoreOutcome::Banned {
            warn!(target: "net", %peer, reason, "banning peer");
            let d = self.config.ban_duration;
            self.ban(BanTarget::Peer(peer), d, reason.to_owned());
        }
    }

    pub(super) fn ban(&mut self, target: BanTarget, duration: Duration, reason: String) {
        let created = unix_now();
        let until = created.saturating_add(duration.as_secs().max(1));
        let to_drop: Vec<PeerId> = {
            let db = &self.swarm.behaviour().peers.db;
            match target {
                BanTarget::Peer(p) => vec![p],
                BanTarget::Ip(ip) => db
                    .connected()
                    .filter(|(_, r)| r.remote.as_ref().and_then(ip_of) == Some(ip))
                    .map(|(p, _)| *p)
                    .collect(),
            }
        };
        self.swarm.behaviour_mut().peers.db.ban(
            target,
            Ban {
                created,
                until,
                reason,
            },
        );
        for p in to_drop {
            self.disconnect(p);
        }
        self.save_store();
    }

    /// Sends a request; if the peer is not connected, the request-response
    /// behaviour dials it.
    pub(super) fn send_request(&mut self, peer: PeerId, request: Request, reply: RequestReply) {
        let p = request.protocol();
        // A relayed circuit is for control traffic and small requests: bulk
        // transfers wait for a direct connection (the caller goes to other
        // peers meanwhile), or they would hit the relay's byte limit.
        if matches!(p, Protocol::Media | Protocol::Blocks) && self.only_relayed(&peer) {
            let _ = reply.send(Err(RequestError::Other(
                "the peer is reachable only through a relay; bulk transfers wait for a direct connection".into(),
            )));
            return;
        }
        // Not connected: the swarm dials with these addresses and any its
        // behaviours know (Kademlia, earlier connections).
        let mut addrs = self.direct_addrs.get(&peer);
        for a in self.provider_addrs.get(&peer) {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        let id = self
            .behaviour_for(p)
            .send_request_with_addresses(&peer, request, addrs);
        self.pending.insert((p, id), reply);
    }

    /// Closes every connection to `peer`; false if there was none.
    ///
    /// The swarm also aborts the dials to `peer` in progress, but reports
    /// each as failed only later. A request sent to `peer` before then
    /// would wait for such a dial instead of dialing anew (the swarm dials
    /// a peer once at a time) and fail with it, so requests to `peer` are
    /// held back until the aborted dials have ended.
    pub(super) fn disconnect(&mut self, peer: PeerId) -> bool {
        let pm = &mut self.swarm.behaviour_mut().peers;
        pm.db.on_disconnecting(&peer);
        let dials = pm.pending_dials(&peer);
        if !dials.is_empty() {
            debug!(target: "net", %peer, dials = dials.len(), "aborting dials");
            let aborted = self
                .aborted_dials
                .entry(peer)
                .or_insert_with(|| AbortedDials {
                    dials: HashSet::new(),
                    since: Instant::now(),
                    requests: Vec::new(),
                });
            aborted.dials.extend(dials);
        }
        self.swarm.disconnect_peer_id(peer).is_ok()
    }

    /// A dial to `peer` connected or failed: sends the requests held back
    /// once no aborted dial to `peer` is left.
    pub(super) fn dial_ended(&mut self, peer: PeerId, id: ConnectionId) {
        let Some(aborted) = self.aborted_dials.get_mut(&peer) else {
            return;
        };
        aborted.dials.remove(&id);
        if aborted.dials.is_empty() {
            self.release_requests(peer);
        }
    }

    pub(super) fn release_requests(&mut self, peer: PeerId) {
        if let Some(aborted) = self.aborted_dials.remove(&peer) {
            for (request, reply) in aborted.requests {
                self.send_request(peer, request, reply);
            }
        }
    }
}
