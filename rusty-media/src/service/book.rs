//! The small bookkeeping the media task owns: the upload token bucket and
//! who provides what. Plain data, no locks: only the task touches them.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use rusty_network::PeerId;
use rusty_shared_types::Hash256;

/// A reply that would wait longer than this for upload tokens is `Busy`.
const MAX_UPLOAD_WAIT: Duration = Duration::from_secs(2);
/// Providers remembered per content id, and content ids remembered.
pub(crate) const MAX_PROVIDERS_PER_ITEM: usize = 64;
const MAX_PROVIDER_ITEMS: usize = 8_192;

/// The largest chunk reply.
const MAX_REPLY_BYTES: usize =
    crate::wire::MAX_CHUNKS_PER_REQUEST as usize * crate::manifest::CHUNK_SIZE as usize;

/// Bytes-per-second token bucket for media replies. Tokens may go into
/// debt: a reply waits until the debt is paid, or is refused as `Busy` when
/// that would take longer than [`MAX_UPLOAD_WAIT`].
#[derive(Debug)]
pub(crate) struct UploadLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl UploadLimiter {
    pub(crate) fn new(bytes_per_sec: u64, now: Instant) -> Self {
        let burst = Self::burst_of(bytes_per_sec as f64);
        UploadLimiter {
            rate: bytes_per_sec as f64,
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// One second's worth, but at least one full chunk reply.
    fn burst_of(rate: f64) -> f64 {
        rate.max(MAX_REPLY_BYTES as f64)
    }

    /// Changes the rate: the tokens earned so far at the old rate stay (up
    /// to the new burst), so a rate changed every second still paces
    /// instead of refilling the bucket each time. From no limit, the bucket
    /// starts empty: nothing was saved while uploads ran unlimited, and the
    /// new rate paces from the first reply.
    pub(crate) fn set_rate(&mut self, bytes_per_sec: u64, now: Instant) {
        if self.rate > 0.0 {
            let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        let was_off = self.rate <= 0.0;
        self.updated = now;
        self.rate = bytes_per_sec as f64;
        self.burst = Self::burst_of(self.rate);
        self.tokens = if was_off {
            0.0
        } else {
            self.tokens.min(self.burst)
        };
    }

    /// How long to wait before sending `bytes`, or `None` to refuse.
    pub(crate) fn reserve(&mut self, bytes: u64, now: Instant) -> Option<Duration> {
        if self.rate <= 0.0 {
            return Some(Duration::ZERO);
        }
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let after = self.tokens - bytes as f64;
        // A reply larger than the burst (a big manifest) goes when the
        // bucket is full, into debt that later replies wait out; otherwise
        // a reply that would wait too long is refused.
        let full = self.tokens >= self.burst;
        if after < -(self.rate * MAX_UPLOAD_WAIT.as_secs_f64()) && !full {
            return None;
        }
        self.tokens = after;
        if after >= 0.0 {
            Some(Duration::ZERO)
        } else {
            Some(Duration::from_secs_f64(-after / self.rate))
        }
    }
}

/// Who is known to provide which content (from announcements and provider
/// records), most recent first when asked.
#[derive(Debug, Default)]
pub(crate) struct ProviderBook {
    items: HashMap<Hash256, HashMap<PeerId, Instant>>,
}

impl ProviderBook {
    pub(crate) fn add(&mut self, id: Hash256, peer: PeerId, now: Instant) {
        if !self.items.contains_key(&id) && self.items.len() >= MAX_PROVIDER_ITEMS {
            // Forget the content heard of least recently.
            let stalest = self
                .items
                .iter()
                .map(|(k, v)| (*k, v.values().max().copied()))
                .min_by_key(|(_, t)| *t)
                .map(|(k, _)| k);
            if let Some(k) = stalest {
                self.items.remove(&k);
            }
        }
        let peers = self.items.entry(id).or_default();
        if !peers.contains_key(&peer) && peers.len() >= MAX_PROVIDERS_PER_ITEM {
            if let Some(oldest) = peers.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                peers.remove(&oldest);
            }
        }
        peers.insert(peer, now);
    }

    pub(crate) fn remove(&mut self, id: &Hash256, peer: &PeerId) {
        if let Some(peers) = self.items.get_mut(id) {
            peers.remove(peer);
        }
    }

    /// Providers of `id`, most recently heard first.
    pub(crate) fn get(&self, id: &Hash256) -> Vec<PeerId> {
        let mut v: Vec<(PeerId, Instant)> = self
            .items
            .get(id)
            .map(|m| m.iter().map(|(p, t)| (*p, *t)).collect())
            .unwrap_or_default();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.into_iter().map(|(p, _)| p).collect()
    }
}
