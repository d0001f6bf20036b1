//! The networks the bridge swaps on, by the names swaps carry: our chains
//! (`dev`, `par-dev`, `arc`, …) and Ethereum (`eth:<chain id>`), with what
//! the engine needs to know of each: decimals, block spacing, lock
//! lengths and finality depth.

use rusty_shared_types::Network;

/// Chain ids of the local Ethereum development nodes (hardhat and anvil
/// use 31337; ganache and `geth --dev` 1337): dev lock lengths there.
const ETH_DEV_CHAIN_IDS: [u64; 2] = [31337, 1337];

/// A network the bridge can name in a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeNetwork {
    Ours(Network),
    Eth { chain_id: u64 },
}

impl std::str::FromStr for BridgeNetwork {
    type Err = String;

    fn from_str(s: &str) -> Result<BridgeNetwork, String> {
        if let Some(id) = s.strip_prefix("eth:") {
            let chain_id = id
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0 && n.to_string() == id)
                .ok_or_else(|| format!("`{s}`: expected eth:<chain id>, e.g. eth:31337"))?;
            return Ok(BridgeNetwork::Eth { chain_id });
        }
        s.parse::<Network>()
            .map(BridgeNetwork::Ours)
            .map_err(|e| e.to_string())
    }
}

impl BridgeNetwork {
    /// The name swaps carry (`par-dev`, `eth:31337`).
    pub fn name(self) -> String {
        match self {
            BridgeNetwork::Ours(n) => n.name().to_string(),
            BridgeNetwork::Eth { chain_id } => format!("eth:{chain_id}"),
        }
    }

    pub fn is_dev(self) -> bool {
        match self {
            BridgeNetwork::Ours(n) => n.is_dev(),
            BridgeNetwork::Eth { chain_id } => ETH_DEV_CHAIN_IDS.contains(&chain_id),
        }
    }

    /// Decimals of the swap's base unit: satoshi-like 10⁻⁸ on our chains;
    /// gwei (10⁻⁹ ether) on Ethereum, so amounts fit the messages' u64
    /// (up to 1.8 × 10¹⁰ ether).
    pub fn decimals(self) -> u32 {
        match self {
            BridgeNetwork::Ours(_) => 8,
            BridgeNetwork::Eth { .. } => 9,
        }
    }

    /// Expected seconds between blocks (an estimate for comparing locks
    /// on two chains).
    pub fn spacing_secs(self) -> u64 {
        match self {
            BridgeNetwork::Ours(n) => n.params().target_spacing,
            // The test node mines every second and on each transaction.
            BridgeNetwork::Eth { .. } if self.is_dev() => 1,
            BridgeNetwork::Eth { .. } => 12,
        }
    }

    /// Blocks of the participant's lock T2 (T1 = 2 × T2).
    pub fn t2_blocks(self) -> u64 {
        if self.is_dev() {
            20
        } else {
            720
        }
    }

    /// Blocks on top of a block before it counts as final without a
    /// ChainLock (Ethereum: two epochs, when it is finalized).
    pub fn final_depth(self) -> u64 {
        match self {
            _ if self.is_dev() => 1,
            BridgeNetwork::Ours(_) => 6,
            BridgeNetwork::Eth { .. } => 64,
        }
    }
}

/// What the engine assumes of a name it cannot parse (never one a swap
/// passed validation with): a slow main chain.
fn or_slow(network: &str) -> Option<BridgeNetwork> {
    network.parse().ok()
}

pub fn spacing_secs(network: &str) -> u64 {
    or_slow(network).map_or(600, BridgeNetwork::spacing_secs)
}

pub fn t2_blocks(network: &str) -> u64 {
    or_slow(network).map_or(720, BridgeNetwork::t2_blocks)
}

/// `amount` base units of `network` as coins (`5.00000000 dev`,
/// `1.000000000 eth:31337`).
pub fn asset_text(network: &str, amount: u64) -> String {
    let decimals = or_slow(network).map_or(8, BridgeNetwork::decimals);
    let unit = 10u64.pow(decimals);
    format!(
        "{}.{:0width$} {network}",
        amount / unit,
        amount % unit,
        width = decimals as usize
    )
}

/// A decimal amount of coins (`1`, `0.25`) in base units with `decimals`
/// places; `None` if malformed, too precise or too large.
pub fn parse_units(text: &str, decimals: u32) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > decimals as usize
    {
        return None;
    }
    let unit = 10u64.pow(decimals);
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().ok()? * 10u64.pow(decimals - frac.len() as u32)
    };
    whole.checked_mul(unit)?.checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_eth_needs_a_chain_id() {
        for name in ["dev", "par-dev", "arc", "eth:31337", "eth:1"] {
            assert_eq!(name.parse::<BridgeNetwork>().unwrap().name(), name);
        }
        for bad in ["eth", "eth:", "eth:0", "eth:x", "eth:-1", "btc"] {
            assert!(bad.parse::<BridgeNetwork>().is_err(), "{bad}");
        }
        assert!("eth:31337".parse::<BridgeNetwork>().unwrap().is_dev());
        assert!(!"eth:1".parse::<BridgeNetwork>().unwrap().is_dev());
    }

    #[test]
    fn amounts_use_each_networks_decimals() {
        assert_eq!(parse_units("1", 9), Some(1_000_000_000));
        assert_eq!(parse_units("0.25", 8), Some(25_000_000));
        assert_eq!(parse_units(".5", 9), Some(500_000_000));
        assert_eq!(parse_units("0.0000000001", 9), None);
        assert_eq!(parse_units("1e3", 9), None);
        assert_eq!(parse_units("", 9), None);
        assert_eq!(parse_units(".", 9), None);
        assert_eq!(parse_units("99999999999999999999", 9), None);
        assert_eq!(
            asset_text("eth:31337", 1_500_000_000),
            "1.500000000 eth:31337"
        );
        assert_eq!(asset_text("dev", 150_000_000), "1.50000000 dev");
    }
}
