//! Files of the network layer in the datadir:
//!
//! - `node.key`: the node's Ed25519 identity (libp2p protobuf encoding),
//!   created on first start with mode 0600, so the peer id is stable.
//! - `peers.json`: known peers with their addresses, and bans in force, so
//!   a restarted node reconnects without bootnodes and keeps its bans.
//!
//! Both are read defensively: an unreadable peer store is logged and
//! ignored (the node starts with an empty one), an unreadable key is an
//! error (silently changing identity would surprise operators).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use libp2p::{identity::Keypair, Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::peers::{Ban, BanTarget};

/// Loads the node key at `path`, creating it if the file does not exist.
pub fn load_or_create_key(path: &Path) -> Result<Keypair, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| KeyError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| KeyError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            write_private(path, &bytes).map_err(|source| KeyError::Io {
                path: path.to_owned(),
                source,
            })?;
            Ok(key)
        }
        Err(source) => Err(KeyError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("node key {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("node key {} is not a valid key ({reason}); move it away to create a new identity", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The persisted peer store.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerStoreFile {
    #[serde(default)]
    pub peers: Vec<StoredPeer>,
    #[serde(default)]
    pub bans: Vec<StoredBan>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredPeer {
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub last_seen: u64,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredBan {
    /// A peer id or an IP address.
    pub target: String,
    pub created: u64,
    pub until: u64,
    pub reason: String,
}

impl PeerStoreFile {
    /// Reads the store; a missing file is an empty store, a corrupt one is
    /// reported and treated as empty.
    pub fn load(path: &Path) -> PeerStoreFile {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(target: "net", path = %path.display(), error = %e, "ignoring unreadable peer store");
                PeerStoreFile::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PeerStoreFile::default(),
            Err(e) => {
                tracing::warn!(target: "net", path = %path.display(), error = %e, "could not read the peer store");
                PeerStoreFile::default()
            }
        }
    }

    /// Writes the store atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_private(path, &bytes)
    }

    /// The peers that parse, with their addresses that parse.
    pub fn parsed_peers(&self) -> impl Iterator<Item = (PeerId, Vec<Multiaddr>, f64)> + '_ {
        self.peers.iter().filter_map(|p| {
            let id = p.peer_id.parse().ok()?;
            let addrs: Vec<Multiaddr> = p.addrs.iter().filter_map(|a| a.parse().ok()).collect();
            (!addrs.is_empty()).then_some((id, addrs, p.score))
        })
    }

    pub fn parsed_bans(&self) -> impl Iterator<Item = (BanTarget, Ban)> + '_ {
        self.bans.iter().filter_map(|b| {
            let target = b.target.parse().ok()?;
            Some((
                target,
                Ban {
                    created: b.created,
                    until: b.until,
                    reason: b.reason.clone(),
                },
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let a = load_or_create_key(&path).unwrap();
        let b = load_or_create_key(&path).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            load_or_create_key(&path),
            Err(KeyError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_peer_store_round_trips_and_survives_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        let p = PeerId::random();
        let store = PeerStoreFile {
            peers: vec![StoredPeer {
                peer_id: p.to_string(),
                addrs: vec!["/ip4/127.0.0.1/tcp/1".into(), "not an addr".into()],
                last_seen: 5,
                score: 1.5,
            }],
            bans: vec![StoredBan {
                target: "10.1.2.3".into(),
                created: 1,
                until: 2,
                reason: "r".into(),
            }],
        };
        store.save(&path).unwrap();
        let loaded = PeerStoreFile::load(&path);
        assert_eq!(loaded, store);
        let peers: Vec<_> = loaded.parsed_peers().collect();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].0, p);
        assert_eq!(peers[0].1.len(), 1);
        assert_eq!(loaded.parsed_bans().count(), 1);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(PeerStoreFile::load(&path), PeerStoreFile::default());
    }
}
