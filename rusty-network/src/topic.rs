//! Gossip topics, namespaced by chain: `/rusty/<chain>/<name>/1`.

use libp2p::gossipsub::{IdentTopic, TopicHash};

/// A gossip topic and its priority class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// New block headers (headers-first announcement; the block itself is
    /// fetched from the announcing peer over the `blocks` protocol).
    Blocks,
    /// Loose transactions.
    Txs,
    /// ChainLock signature shares and recovered ChainLocks (masternodes,
    /// issue 4).
    ChainLocks,
    /// Final DKG commitments of masternode quorums (issue 4); the DKG
    /// messages between members travel on the `direct` protocol.
    Quorum,
    /// Reserved: governance objects and votes.
    Governance,
    /// Media announcements (issue 5): small signed messages (content
    /// published, live segment available, "I have content X"); the bytes
    /// travel on the `media` request-response protocol.
    Media,
}

/// How urgently a message is handled; under load low priority is shed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::Blocks,
        Topic::Txs,
        Topic::ChainLocks,
        Topic::Quorum,
        Topic::Governance,
        Topic::Media,
    ];
    /// The topics a node subscribes to today.
    pub const SUBSCRIBED: [Topic; 5] = [
        Topic::Blocks,
        Topic::Txs,
        Topic::ChainLocks,
        Topic::Quorum,
        Topic::Media,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::Blocks => "blocks",
            Topic::Txs => "txs",
            Topic::ChainLocks => "chainlocks",
            Topic::Quorum => "quorum",
            Topic::Governance => "governance",
            Topic::Media => "media",
        }
    }

    pub fn priority(self) -> Priority {
        match self {
            Topic::Blocks | Topic::ChainLocks | Topic::Quorum => Priority::High,
            Topic::Txs | Topic::Governance => Priority::Medium,
            Topic::Media => Priority::Low,
        }
    }

    pub fn ident(self, chain: &str) -> IdentTopic {
        IdentTopic::new(format!("/rusty/{chain}/{}/1", self.name()))
    }

    /// The topic of a received message's hash, if it is one of ours.
    pub fn from_hash(chain: &str, hash: &TopicHash) -> Option<Topic> {
        Topic::ALL
            .into_iter()
            .find(|t| t.ident(chain).hash() == *hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_namespaced_by_chain() {
        let h = Topic::Txs.ident("dev").hash();
        assert_eq!(h.as_str(), "/rusty/dev/txs/1");
        assert_eq!(Topic::from_hash("dev", &h), Some(Topic::Txs));
        assert_eq!(Topic::from_hash("main", &h), None);
    }

    #[test]
    fn the_masternode_topics_are_subscribed_with_high_priority() {
        for t in [Topic::ChainLocks, Topic::Quorum] {
            assert!(Topic::SUBSCRIBED.contains(&t));
            assert_eq!(t.priority(), Priority::High);
        }
    }

    #[test]
    fn media_is_subscribed_at_low_priority_and_governance_is_not() {
        assert!(Topic::SUBSCRIBED.contains(&Topic::Media));
        assert_eq!(Topic::Media.priority(), Priority::Low);
        assert_eq!(
            Topic::Media.ident("dev").hash().as_str(),
            "/rusty/dev/media/1"
        );
        assert!(!Topic::SUBSCRIBED.contains(&Topic::Governance));
    }
}
