//! Housekeeping on the heartbeat: dialing due peers, provider records and
//! Kademlia queries, and the peer store on disk.

use super::*;

impl Task {
    pub(super) fn heartbeat(&mut self) {
        let now = Instant::now();
        let unix = unix_now();
        {
            let db = &mut self.swarm.behaviour_mut().peers.db;
            db.heartbeat(now);
            for t in db.expire_bans(unix) {
                info!(target: "net", target = %t, "ban expired");
            }
        }
        self.limiter.prune(now);
        // Never hold requests back for long, should a dial's end go
        // unreported.
        let overdue: Vec<PeerId> = self
            .aborted_dials
            .iter()
            .filter(|(_, a)| now.duration_since(a.since) >= ABORTED_DIALS_WAIT)
            .map(|(p, _)| *p)
            .collect();
        for peer in overdue {
            self.release_requests(peer);
        }
        self.provider_housekeeping();
        self.dial_due();
        let connected = self.swarm.connected_peers().count();
        let bootstrap_due = self
            .last_bootstrap
            .is_none_or(|t| now.duration_since(t) >= BOOTSTRAP_EVERY);
        if connected > 0 && bootstrap_due {
            self.last_bootstrap = Some(now);
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        let since_save = now.duration_since(self.last_save);
        if since_save >= SAVE_EVERY || (self.store_dirty && since_save >= DIRTY_SAVE_AFTER) {
            self.save_store();
        }
    }

    /// Whether Kademlia's routing table has any peer.
    pub(super) fn has_routable_peer(&mut self) -> bool {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .any(|b| b.num_entries() > 0)
    }

    /// Ends provider lookups whose caller gave up, and publishes records
    /// provided while the routing table was empty.
    pub(super) fn provider_housekeeping(&mut self) {
        let abandoned: Vec<kad::QueryId> = self
            .provider_queries
            .iter()
            .filter(|(_, q)| q.found.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in abandoned {
            self.provider_queries.remove(&id);
            if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                q.finish();
            }
        }
        if !self.unpublished.is_empty() && self.has_routable_peer() {
            for key in std::mem::take(&mut self.unpublished) {
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
                    debug!(target: "net", error = %e, "could not publish a provider record");
                }
            }
        }
    }

    /// Progress of a Kademlia query: collects the providers of a
    /// `get_providers` lookup.
    pub(super) fn on_kad_query(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        match result {
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                let local = *self.swarm.local_peer_id();
                let mut new = Vec::new();
                if let Some(q) = self.provider_queries.get_mut(&id) {
                    for p in providers {
                        if p != local && q.seen.insert(p) {
                            new.push(p);
                        }
                    }
                }
                for p in new {
                    self.remember_provider_addrs(p);
                    if let Some(q) = self.provider_queries.get(&id) {
                        let _ = q.found.send(Some(p));
                    }
                }
            }
            kad::QueryResult::GetProviders(_) => {}
            kad::QueryResult::StartProviding(r) => {
                debug!(target: "net", result = ?r.map(|_| ()), "provider record published");
                return;
            }
            _ => return,
        }
        if last {
            if let Some(q) = self.provider_queries.remove(&id) {
                let _ = q.found.send(None);
            }
        }
    }

    /// Keeps the addresses Kademlia knows for a provider — its routing
    /// table entry, and the addresses the peers answering the running query
    /// gave with their provider records (those are forgotten when the
    /// query ends) — so a later request can dial it.
    pub(super) fn remember_provider_addrs(&mut self, peer: PeerId) {
        // Kademlia answers this from its routing table and running queries,
        // without side effects; it is how the swarm itself asks it when
        // dialing a peer id.
        let addrs = self
            .swarm
            .behaviour_mut()
            .kad
            .handle_pending_outbound_connection(
                ConnectionId::new_unchecked(0),
                Some(peer),
                &[],
                Endpoint::Dialer,
            )
            .unwrap_or_default();
        let mut kept: Vec<Multiaddr> = Vec::new();
        for a in addrs {
            if peer_id_of(&a).is_some_and(|p| p != peer) {
                continue;
            }
            let base = without_peer_id(&a);
            if is_dialable(&base) && !kept.contains(&base) {
                kept.push(base);
            }
        }
        // Most preferred (routing table first) ends up first.
        for a in kept.into_iter().take(MAX_DIRECT_ADDRS_PER_PEER).rev() {
            self.provider_addrs.add(peer, a);
        }
    }

    /// Dials persistent peers that are down and, while outbound slots are
    /// free, the best-scored known peers not in backoff.
    pub(super) fn dial_due(&mut self) {
        let now = Instant::now();
        let unix = unix_now();
        let max_out = self.config.max_outbound();
        let dial = {
            let db = &self.swarm.behaviour().peers.db;
            let busy = db.connected_count(false) + db.dialing_count();
            let want = max_out.saturating_sub(busy);
            db.to_dial(want, now, unix)
        };
        let local = *self.swarm.local_peer_id();
        for (peer, addrs) in dial {
            if peer == local {
                continue;
            }
            self.swarm.behaviour_mut().peers.db.on_dialing(peer, now);
            let opts = DialOpts::peer_id(peer).addresses(addrs).build();
            // A refused dial reaches the peer manager as a `DialFailure`
            // swarm event, which records it (and backs off).
            if let Err(e) = self.swarm.dial(opts) {
                debug!(target: "net", %peer, error = %e, "dial refused");
            }
        }
        let anon: Vec<Multiaddr> = self
            .anonymous_bootnodes
            .iter_mut()
            .filter(|a| a.next_dial <= now)
            .map(|a| {
                // Until the dial fails or connects, do not retry.
                a.next_dial = now + Duration::from_secs(10);
                a.addr.clone()
            })
            .collect();
        for addr in anon {
            if let Err(e) = self.swarm.dial(addr.clone()) {
                debug!(target: "net", %addr, error = %e, "dial refused");
            }
        }
    }

    pub(super) fn load_store(&mut self) {
        let Some(path) = &self.store_path else {
            return;
        };
        let store = PeerStoreFile::load(path);
        let now = Instant::now();
        let db = &mut self.swarm.behaviour_mut().peers.db;
        let mut n = 0;
        for (peer, addrs, _score) in store.parsed_peers() {
            for a in addrs {
                db.add_address(peer, a, now);
            }
            n += 1;
        }
        let unix = unix_now();
        for (target, ban) in store.parsed_bans() {
            if ban.until > unix {
                db.ban(target, ban);
            }
        }
        if n > 0 {
            info!(target: "net", peers = n, "loaded the peer store");
        }
    }

    pub(super) fn save_store(&mut self) {
        self.last_save = Instant::now();
        self.store_dirty = false;
        let Some(path) = &self.store_path else {
            return;
        };
        let db = &self.swarm.behaviour().peers.db;
        let unix = unix_now();
        let mut peers: Vec<StoredPeer> = db
            .iter()
            .filter(|(p, r)| !r.addrs.is_empty() && !db.is_banned_peer(p, unix))
            .map(|(p, r)| StoredPeer {
                peer_id: p.to_string(),
                addrs: r.addrs.iter().map(|a| a.to_string()).collect(),
                last_seen: r.last_seen,
                score: r.score,
            })
            .collect();
        peers.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(b.score.total_cmp(&a.score))
        });
        peers.truncate(1000);
        let bans = db
            .bans()
            .map(|(t, b)| StoredBan {
                target: t.to_string(),
                created: b.created,
                until: b.until,
                reason: b.reason.clone(),
            })
            .collect();
        let file = PeerStoreFile { peers, bans };
        if let Err(e) = file.save(path) {
            warn!(target: "net", path = %path.display(), error = %e, "could not save the peer store");
        }
    }
}

/// Addresses worth remembering: not unspecified (0.0.0.0) ones.
pub(super) fn is_dialable(addr: &Multiaddr) -> bool {
    match ip_of(addr) {
        Some(ip) => !ip.is_unspecified(),
        None => false,
    }
}
