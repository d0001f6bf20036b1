//! bech32m addresses: `<hrp>1…` where the hrp names the network (`rsc`,
//! `trsc`, `drsc`) and the data is a version byte followed by a 32-byte hash.

use std::{fmt, str::FromStr};

use bech32::{primitives::decode::CheckedHrpstring, Bech32m, Hrp};

use crate::{Hash256, Network, Script};

/// Address version 0: pay to the BLAKE3 hash of an Ed25519 public key.
pub const ADDRESS_VERSION_P2PKH: u8 = 0;

/// A payment destination on one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    pub network: Network,
    pub pubkey_hash: Hash256,
}

/// Why a string is not an address (of the expected network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not bech32m, or the checksum is wrong.
    #[error("not a valid bech32m address: {0}")]
    Encoding(String),
    /// The prefix names no network.
    #[error("unknown address prefix `{0}`")]
    UnknownPrefix(String),
    /// A known prefix, but another network's.
    #[error("address is for the {found} network, this node runs {expected}")]
    WrongNetwork { expected: Network, found: Network },
    /// Unknown version byte or wrong payload length.
    #[error("unsupported address version or length")]
    UnsupportedVersion,
}

impl Address {
    pub fn p2pkh(network: Network, pubkey_hash: Hash256) -> Address {
        Address {
            network,
            pubkey_hash,
        }
    }

    /// The lock script paying this address.
    pub fn lock_script(&self) -> Script {
        Script::p2pkh(&self.pubkey_hash)
    }

    /// The address a lock script pays, if it is a standard template.
    pub fn from_lock_script(network: Network, script: &Script) -> Option<Address> {
        script.as_p2pkh().map(|h| Address::p2pkh(network, h))
    }

    /// Parses an address and checks that it belongs to `network`.
    pub fn parse_for(s: &str, network: Network) -> Result<Address, AddressError> {
        let a: Address = s.parse()?;
        if a.network != network {
            return Err(AddressError::WrongNetwork {
                expected: network,
                found: a.network,
            });
        }
        Ok(a)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(self.network.params().hrp);
        let mut data = Vec::with_capacity(33);
        data.push(ADDRESS_VERSION_P2PKH);
        data.extend_from_slice(&self.pubkey_hash.0);
        match bech32::encode::<Bech32m>(hrp, &data) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let checked = CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|e| AddressError::Encoding(e.to_string()))?;
        let hrp = checked.hrp().to_lowercase();
        let network =
            Network::from_hrp(&hrp).ok_or_else(|| AddressError::UnknownPrefix(hrp.clone()))?;
        let data: Vec<u8> = checked.byte_iter().collect();
        if data.len() != 33 || data[0] != ADDRESS_VERSION_P2PKH {
            return Err(AddressError::UnsupportedVersion);
        }
        let mut h = [0u8; 32];
        h.copy_from_slice(&data[1..]);
        Ok(Address::p2pkh(network, Hash256(h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_each_network() {
        for n in Network::ALL {
            let a = Address::p2pkh(n, Hash256([9u8; 32]));
            let s = a.to_string();
            assert!(s.starts_with(n.params().hrp));
            assert_eq!(s.parse::<Address>().unwrap(), a);
            assert_eq!(Address::parse_for(&s, n).unwrap(), a);
        }
    }

    #[test]
    fn rejects_bad_addresses() {
        let a = Address::p2pkh(Network::Dev, Hash256([1u8; 32])).to_string();
        assert!(matches!(
            Address::parse_for(&a, Network::Main),
            Err(AddressError::WrongNetwork { .. })
        ));
        let mut broken = a.clone().into_bytes();
        let last = broken.len() - 1;
        broken[last] = if broken[last] == b'q' { b'p' } else { b'q' };
        assert!(String::from_utf8(broken)
            .unwrap()
            .parse::<Address>()
            .is_err());
        assert!("hello".parse::<Address>().is_err());
        // bech32 (not m) checksums are rejected.
        let hrp = Hrp::parse("drsc").unwrap();
        let old = bech32::encode::<bech32::Bech32>(hrp, &[0u8; 33]).unwrap();
        assert!(old.parse::<Address>().is_err());
    }
}
