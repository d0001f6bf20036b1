//! Chain parameters per network. Every consensus constant lives here.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{
    Amount, Block, BlockHeader, CoinbasePayload, Hash256, Payload, Script, Transaction, TxOut, COIN,
};

/// The networks this software runs: Rusty Coin's main, test and dev
/// networks, and the PAR (Paradigm) and ARC (Arceon) chains with a dev
/// network each. Every network has its own genesis, protocol namespace
/// (`/rusty/<name>/…`), ports and address prefix, so a node of one never
/// talks to a node of another (the bridge swaps value between them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Main,
    Test,
    Dev,
    Par,
    #[serde(rename = "par-dev")]
    ParDev,
    Arc,
    #[serde(rename = "arc-dev")]
    ArcDev,
}

/// The chains this software runs; each has one or more [`Network`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Chain {
    /// Rusty Coin.
    Rsc,
    /// Paradigm.
    Par,
    /// Arceon.
    Arc,
}

impl Chain {
    /// The coin's ticker, as the bridge and the CLI print it.
    pub fn ticker(self) -> &'static str {
        match self {
            Chain::Rsc => "RSC",
            Chain::Par => "PAR",
            Chain::Arc => "ARC",
        }
    }

    /// The network of this chain with regtest rules (trivial proof of
    /// work, blocks on demand).
    pub fn dev_network(self) -> Network {
        match self {
            Chain::Rsc => Network::Dev,
            Chain::Par => Network::ParDev,
            Chain::Arc => Network::ArcDev,
        }
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ticker().to_ascii_lowercase())
    }
}

impl FromStr for Chain {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rsc" | "rusty" => Ok(Chain::Rsc),
            "par" | "paradigm" => Ok(Chain::Par),
            "arc" | "arceon" => Ok(Chain::Arc),
            _ => Err(UnknownNetwork(s.to_string())),
        }
    }
}

impl Network {
    pub const ALL: [Network; 7] = [
        Network::Main,
        Network::Test,
        Network::Dev,
        Network::Par,
        Network::ParDev,
        Network::Arc,
        Network::ArcDev,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Network::Main => "main",
            Network::Test => "test",
            Network::Dev => "dev",
            Network::Par => "par",
            Network::ParDev => "par-dev",
            Network::Arc => "arc",
            Network::ArcDev => "arc-dev",
        }
    }

    pub fn params(self) -> &'static ChainParams {
        match self {
            Network::Main => &MAIN,
            Network::Test => &TEST,
            Network::Dev => &DEV,
            Network::Par => &PAR,
            Network::ParDev => &PAR_DEV,
            Network::Arc => &ARC,
            Network::ArcDev => &ARC_DEV,
        }
    }

    /// The chain this network belongs to.
    pub fn chain(self) -> Chain {
        match self {
            Network::Main | Network::Test | Network::Dev => Chain::Rsc,
            Network::Par | Network::ParDev => Chain::Par,
            Network::Arc | Network::ArcDev => Chain::Arc,
        }
    }

    /// Whether this network has regtest rules: trivial proof of work,
    /// blocks on demand, the dev-only test switches.
    pub fn is_dev(self) -> bool {
        self == self.chain().dev_network()
    }

    /// This network's chain with regtest rules (`--dev` with `--network`).
    pub fn dev(self) -> Network {
        self.chain().dev_network()
    }

    /// The network whose addresses use `hrp`.
    pub fn from_hrp(hrp: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.params().hrp == hrp)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown network name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network `{0}` (expected main, test, dev, par, par-dev, arc or arc-dev)")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "main" | "mainnet" => Ok(Network::Main),
            "test" | "testnet" => Ok(Network::Test),
            "dev" | "devnet" | "regtest" => Ok(Network::Dev),
            "par" | "paradigm" => Ok(Network::Par),
            "par-dev" | "pardev" => Ok(Network::ParDev),
            "arc" | "arceon" => Ok(Network::Arc),
            "arc-dev" | "arcdev" => Ok(Network::ArcDev),
            other => Err(UnknownNetwork(other.to_string())),
        }
    }
}

/// Consensus and default-policy parameters of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainParams {
    pub network: Network,
    /// bech32m human-readable prefix of addresses.
    pub hrp: &'static str,
    /// Target time between blocks, seconds.
    pub target_spacing: u64,
    /// ASERT half-life in blocks (the time half-life is this × spacing).
    pub asert_half_life_blocks: u64,
    /// Easiest allowed target, compact form. The genesis uses it too.
    pub pow_limit_bits: u32,
    /// Keep every block at the pow limit (dev only, like Bitcoin's regtest).
    pub pow_no_retargeting: bool,
    pub genesis_time: u64,
    /// Block subsidy before the first halving.
    pub initial_subsidy: Amount,
    pub halving_interval: u64,
    /// Blocks before a coinbase output may be spent.
    pub coinbase_maturity: u64,
    /// Largest encoded block, bytes.
    pub max_block_size: usize,
    /// Largest encoded transaction, bytes.
    pub max_tx_size: usize,
    /// How far ahead of the node's clock a block time may be, seconds.
    pub max_future_block_time: u64,
    /// Blocks in the median-time-past window.
    pub median_time_span: usize,
    /// Default minimum relay fee rate, base units per 1000 bytes.
    pub min_relay_fee_per_kb: u64,
    /// Default JSON-RPC port on 127.0.0.1.
    pub rpc_port: u16,
    /// Default P2P port.
    pub p2p_port: u16,
    /// Masternodes, quorums and rewards.
    pub masternode: MasternodeParams,
    /// The account world (EVM), where it is active.
    pub evm: Option<crate::evm::EvmParams>,
}

/// How a block subsidy is split, in percent (the three add up to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardSplit {
    pub miner: u8,
    pub masternode: u8,
    pub treasury: u8,
}

/// Masternode and quorum parameters of a network (architecture §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasternodeParams {
    /// The exact value of a masternode collateral output.
    pub collateral: Amount,
    pub reward_split: RewardSplit,
    /// Members of a quorum, at most.
    pub quorum_size: usize,
    /// Signature shares (and DKG members) a quorum needs.
    pub quorum_threshold: usize,
    /// A DKG starts at every multiple of this height.
    pub quorum_interval: u64,
    /// Blocks each of the four DKG phases lasts at most (contribute,
    /// complain, justify, commit); a phase ends early once every member's
    /// message is in.
    pub dkg_phase_blocks: u64,
    /// The commitment must be mined within this many blocks of the quorum
    /// height; the block at the last height carries a null commitment if
    /// none was mined.
    pub dkg_mining_window: u64,
    /// The most recent quorums that sign (ChainLocks pick one of them by
    /// height). 1 on every network: see `docs/masternodes.md`, "Signing and
    /// ChainLocks".
    pub signing_quorums: usize,
    /// PoSe penalty for a member missing from a DKG's valid members.
    pub pose_miss_penalty: u32,
    /// A masternode whose penalty reaches this is banned.
    pub pose_ban_threshold: u32,
}

/// A 2.5-minute chain with four-year halvings.
pub static MAIN: ChainParams = MAIN_BASE;

pub static TEST: ChainParams = ChainParams {
    network: Network::Test,
    hrp: "trsc",
    target_spacing: 30,
    pow_limit_bits: 0x1f0f_ffff,
    genesis_time: 1_767_225_601,
    rpc_port: 18432,
    p2p_port: 18433,
    masternode: MasternodeParams {
        quorum_size: 10,
        quorum_threshold: 6,
        ..MAIN_BASE.masternode
    },
    ..MAIN_BASE
};

/// Dev: 2-second blocks, trivial proof of work, short maturity; mines on
/// demand (`generatetoaddress`) like Bitcoin's regtest.
pub static DEV: ChainParams = ChainParams {
    network: Network::Dev,
    hrp: "drsc",
    target_spacing: 2,
    pow_limit_bits: 0x207f_ffff,
    pow_no_retargeting: true,
    genesis_time: 1_767_225_602,
    coinbase_maturity: 10,
    rpc_port: 28432,
    p2p_port: 28433,
    masternode: MasternodeParams {
        collateral: Amount::from_coins_const(10),
        quorum_size: 5,
        quorum_threshold: 3,
        ..MAIN_BASE.masternode
    },
    evm: Some(crate::evm::EvmParams {
        chain_id: 7373,
        activation_height: 0,
        block_gas_limit: 30_000_000,
        // 1 gwei-equivalent: 10⁻⁹ coin per gas.
        base_fee: 1_000_000_000,
    }),
    ..MAIN_BASE
};

/// Paradigm: one-minute blocks, a 25-coin subsidy halving every two years.
pub static PAR: ChainParams = PAR_BASE;

/// Paradigm with regtest rules.
pub static PAR_DEV: ChainParams = ChainParams {
    network: Network::ParDev,
    hrp: "dpar",
    target_spacing: 1,
    pow_limit_bits: 0x207f_ffff,
    pow_no_retargeting: true,
    genesis_time: 1_767_225_612,
    coinbase_maturity: 10,
    rpc_port: 28532,
    p2p_port: 28533,
    masternode: MasternodeParams {
        collateral: Amount::from_coins_const(10),
        quorum_size: 5,
        quorum_threshold: 3,
        ..MAIN_BASE.masternode
    },
    ..PAR_BASE
};

const PAR_BASE: ChainParams = ChainParams {
    network: Network::Par,
    hrp: "par",
    target_spacing: 60,
    asert_half_life_blocks: 360,
    genesis_time: 1_767_225_610,
    initial_subsidy: Amount::from_coins_const(25),
    halving_interval: 1_051_200,
    rpc_port: 8532,
    p2p_port: 8533,
    ..MAIN_BASE
};

/// Arceon: five-minute blocks, a 100-coin subsidy halving every four years.
pub static ARC: ChainParams = ARC_BASE;

/// Arceon with regtest rules.
pub static ARC_DEV: ChainParams = ChainParams {
    network: Network::ArcDev,
    hrp: "darc",
    target_spacing: 3,
    pow_limit_bits: 0x207f_ffff,
    pow_no_retargeting: true,
    genesis_time: 1_767_225_622,
    coinbase_maturity: 10,
    rpc_port: 28632,
    p2p_port: 28633,
    masternode: MasternodeParams {
        collateral: Amount::from_coins_const(10),
        quorum_size: 5,
        quorum_threshold: 3,
        ..MAIN_BASE.masternode
    },
    ..ARC_BASE
};

const ARC_BASE: ChainParams = ChainParams {
    network: Network::Arc,
    hrp: "arc",
    target_spacing: 300,
    asert_half_life_blocks: 72,
    genesis_time: 1_767_225_620,
    initial_subsidy: Amount::from_coins_const(100),
    halving_interval: 420_000,
    rpc_port: 8632,
    p2p_port: 8633,
    ..MAIN_BASE
};

// Struct-update syntax needs a const, not a static.
const MAIN_BASE: ChainParams = ChainParams {
    network: Network::Main,
    hrp: "rsc",
    target_spacing: 150,
    asert_half_life_blocks: 144,
    pow_limit_bits: 0x1e0f_ffff,
    pow_no_retargeting: false,
    genesis_time: 1_767_225_600,
    initial_subsidy: Amount::MAX_SUBSIDY,
    halving_interval: 840_000,
    coinbase_maturity: 100,
    max_block_size: 2_000_000,
    max_tx_size: 1_000_000,
    max_future_block_time: 2 * 60 * 60,
    median_time_span: 11,
    min_relay_fee_per_kb: 1_000,
    rpc_port: 8432,
    p2p_port: 8433,
    masternode: MasternodeParams {
        collateral: Amount::from_coins_const(1000),
        reward_split: RewardSplit {
            miner: 45,
            masternode: 45,
            treasury: 10,
        },
        quorum_size: 50,
        quorum_threshold: 30,
        quorum_interval: 24,
        dkg_phase_blocks: 2,
        dkg_mining_window: 18,
        // One: any two thresholds of one quorum share a member, so two
        // sides of a partition cannot both lock. With several quorums
        // taking turns by height, each side could hold a threshold of a
        // different one and lock its own fork (`rusty-cli chaos` did).
        signing_quorums: 1,
        pose_miss_penalty: 34,
        pose_ban_threshold: 100,
    },
    // Not active on main until its activation height is chosen.
    evm: None,
};

impl ChainParams {
    /// Block subsidy at `height`: halves every `halving_interval` blocks,
    /// zero after 64 halvings.
    pub fn subsidy(&self, height: u64) -> Amount {
        let halvings = height / self.halving_interval.max(1);
        if halvings >= 64 {
            return Amount::ZERO;
        }
        // Shifting right only shrinks a value already in the money range.
        Amount::from_units(self.initial_subsidy.units() >> halvings).unwrap_or(Amount::ZERO)
    }

    /// `percent` of the subsidy at `height`, rounded down.
    fn subsidy_part(&self, height: u64, percent: u8) -> Amount {
        let part = u128::from(self.subsidy(height).units()) * u128::from(percent) / 100;
        // At most the subsidy, so in range.
        Amount::from_units(u64::try_from(part).unwrap_or(0)).unwrap_or(Amount::ZERO)
    }

    /// What the masternode payee of the block at `height` receives.
    pub fn masternode_reward(&self, height: u64) -> Amount {
        self.subsidy_part(height, self.masternode.reward_split.masternode)
    }

    /// The treasury's share of the block at `height`. The coinbase does not
    /// create it; governance superblocks will.
    pub fn treasury_reward(&self, height: u64) -> Amount {
        self.subsidy_part(height, self.masternode.reward_split.treasury)
    }

    /// What a coinbase may create besides fees: the subsidy without the
    /// treasury share (miner plus masternode payee).
    pub fn coinbase_subsidy(&self, height: u64) -> Amount {
        self.subsidy(height)
            .checked_sub(self.treasury_reward(height))
            .unwrap_or(Amount::ZERO)
    }

    /// ASERT half-life in seconds.
    pub fn asert_half_life_secs(&self) -> u64 {
        self.asert_half_life_blocks
            .saturating_mul(self.target_spacing)
    }

    /// The genesis block: fixed by the parameters, trusted, not mined. Its
    /// only output is an unspendable data carrier naming the network.
    pub fn genesis_block(&self) -> Block {
        let message = format!(
            "Rusty Coin {} genesis: blocks, quorums and media",
            self.network
        );
        let lock = Script::data_carrier(message.as_bytes()).unwrap_or_default();
        let coinbase = Transaction {
            version: 1,
            inputs: Vec::new(),
            outputs: vec![TxOut {
                value: Amount::ZERO,
                lock,
            }],
            lock_time: 0,
            payload: Some(Payload::Coinbase(CoinbasePayload {
                height: 0,
                extra: Vec::new(),
            })),
        };
        let merkle_root = genesis_merkle_root(&coinbase);
        Block {
            header: BlockHeader {
                version: 1,
                prev_hash: Hash256::ZERO,
                merkle_root,
                state_root: Hash256::ZERO,
                mn_list_root: Hash256::ZERO,
                chainlock_hash: Hash256::ZERO,
                time: self.genesis_time,
                bits: self.pow_limit_bits,
                nonce: 0,
            },
            txs: vec![coinbase],
        }
    }
}

/// A one-leaf merkle tree: the leaf hash of the coinbase's wtxid. Spelled out
/// here because shared-types does not depend on the crypto crate; a test in
/// `rusty-crypto` checks it agrees with the general merkle root.
fn genesis_merkle_root(coinbase: &Transaction) -> Hash256 {
    Hash256::domain_hash(crate::Domain::MerkleLeaf, &coinbase.wtxid().0)
}

impl Amount {
    /// `coins` whole RSC in a constant (zero if out of range).
    pub const fn from_coins_const(coins: u64) -> Amount {
        match Amount::from_units(coins * COIN) {
            Ok(a) => a,
            Err(_) => Amount::ZERO,
        }
    }

    /// 50 RSC, the initial block subsidy.
    pub const MAX_SUBSIDY: Amount = match Amount::from_units(50 * COIN) {
        Ok(a) => a,
        Err(_) => Amount::ZERO,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves() {
        let p = Network::Main.params();
        assert_eq!(p.subsidy(0).units(), 50 * COIN);
        assert_eq!(p.subsidy(839_999).units(), 50 * COIN);
        assert_eq!(p.subsidy(840_000).units(), 25 * COIN);
        assert_eq!(p.subsidy(840_000 * 64), Amount::ZERO);
    }

    #[test]
    fn reward_split_adds_up() {
        for n in Network::ALL {
            let p = n.params();
            let s = p.masternode.reward_split;
            assert_eq!(
                u32::from(s.miner) + u32::from(s.masternode) + u32::from(s.treasury),
                100
            );
            let h = 1;
            assert_eq!(
                p.masternode_reward(h).units(),
                p.subsidy(h).units() * 45 / 100
            );
            assert_eq!(
                p.coinbase_subsidy(h).units() + p.treasury_reward(h).units(),
                p.subsidy(h).units()
            );
            assert!(p.masternode.quorum_threshold <= p.masternode.quorum_size);
            assert!(p.masternode.dkg_mining_window < p.masternode.quorum_interval);
            assert!(4 * p.masternode.dkg_phase_blocks < p.masternode.dkg_mining_window);
        }
        assert_eq!(DEV.masternode.collateral.units(), 10 * COIN);
        assert_eq!(MAIN.masternode.collateral.units(), 1000 * COIN);
    }

    #[test]
    fn genesis_differs_per_network() {
        let hashes: std::collections::HashSet<_> = Network::ALL
            .iter()
            .map(|n| n.params().genesis_block().hash())
            .collect();
        assert_eq!(hashes.len(), Network::ALL.len());
    }

    #[test]
    fn networks_do_not_share_names_ports_or_prefixes() {
        let distinct = |f: &dyn Fn(&ChainParams) -> String| {
            let all: std::collections::HashSet<_> =
                Network::ALL.iter().map(|n| f(n.params())).collect();
            all.len() == Network::ALL.len()
        };
        assert!(distinct(&|p| p.network.name().to_string()));
        assert!(distinct(&|p| p.hrp.to_string()));
        assert!(distinct(&|p| p.rpc_port.to_string()));
        assert!(distinct(&|p| p.p2p_port.to_string()));
        for n in Network::ALL {
            assert_eq!(n.params().network, n, "{n}'s params name another network");
            assert_eq!(n.dev().chain(), n.chain());
            assert!(n.dev().is_dev());
            assert_eq!(n.chain().to_string().parse::<Chain>().unwrap(), n.chain());
        }
        assert_eq!(PAR.initial_subsidy.units(), 25 * COIN);
        assert_eq!(ARC_DEV.initial_subsidy.units(), 100 * COIN);
    }

    #[test]
    fn network_names_parse() {
        for n in Network::ALL {
            assert_eq!(n.name().parse::<Network>().unwrap(), n);
            assert_eq!(Network::from_hrp(n.params().hrp), Some(n));
        }
        assert!("moon".parse::<Network>().is_err());
    }
}
