//! Command-line arguments.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use rusty_shared_types::Network;

#[derive(Debug, Parser)]
#[command(
    name = "rusty-cli",
    version,
    about = "Rusty Coin: run a node, or talk to one over JSON-RPC"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by the node and every client subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Network and data")]
pub struct GlobalArgs {
    /// Network: main, test or dev (Rusty Coin); par or par-dev (Paradigm);
    /// arc or arc-dev (Arceon).
    #[arg(long, global = true, env = "RUSTY_NETWORK", default_value = "main")]
    pub network: Network,
    /// Use the dev network of the chosen chain (shorthand for --network dev,
    /// or par-dev with --network par; for `node`: also mine and create a
    /// wallet on first start).
    #[arg(long, global = true)]
    pub dev: bool,
    /// Root data directory; the network's files live in `<datadir>/<network>/`.
    #[arg(long, global = true, env = "RUSTY_DATADIR")]
    pub datadir: Option<PathBuf>,
    /// Node RPC URL for client commands [default: http://127.0.0.1:<network's RPC port>].
    #[arg(
        long,
        global = true,
        env = "RUSTY_RPC_URL",
        help_heading = "RPC client"
    )]
    pub rpc_url: Option<String>,
    /// RPC user (instead of the cookie file).
    #[arg(
        long,
        global = true,
        env = "RUSTY_RPC_USER",
        help_heading = "RPC client"
    )]
    pub rpc_user: Option<String>,
    /// RPC password (with --rpc-user).
    #[arg(
        long,
        global = true,
        env = "RUSTY_RPC_PASSWORD",
        help_heading = "RPC client",
        hide_env_values = true
    )]
    pub rpc_password: Option<String>,
}

/// `~/.rusty` (or `./.rusty` without a home directory).
pub fn default_root() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".rusty")
}

impl GlobalArgs {
    pub fn network(&self) -> Network {
        if self.dev {
            self.network.dev()
        } else {
            self.network
        }
    }

    /// `<datadir>/<network>`, with the datadir defaulting to `~/.rusty`.
    pub fn network_dir(&self) -> PathBuf {
        let root = self.datadir.clone().unwrap_or_else(default_root);
        root.join(self.network().name())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a full node.
    Node(Box<NodeArgs>),
    /// Wallet of a running node.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Mining on a running node.
    #[command(subcommand)]
    Mine(MineCommand),
    /// Masternodes: operator keys, registration, status.
    #[command(subcommand)]
    Masternode(MasternodeCommand),
    /// Governance: submit and vote on proposals, the treasury, parameters.
    #[command(subcommand)]
    Gov(GovCommand),
    /// Contracts: deposit coins into an EVM account, read one, deploy and
    /// call contracts (docs/contracts.md).
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Call any RPC method: `rusty-cli rpc getblockhash 0`. Parameters that
    /// parse as JSON are sent as JSON, others as strings.
    Rpc { method: String, params: Vec<String> },
    /// Benchmarks that run on this machine, without a running node.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Start N dev nodes on this machine, wired to each other over loopback.
    ///
    /// All nodes run in this one process and always on the dev network. Node i
    /// keeps its files in <datadir>/node<i>/dev/ (--datadir defaults to
    /// ~/.rusty/localnet here). Ctrl-C, SIGTERM or `rpc stop` on any node stops
    /// them all.
    Localnet(LocalnetArgs),
    /// `.augy` audio files: pack, inspect, unpack. Needs no running node.
    #[command(subcommand)]
    Augy(AugyCommand),
    /// A chaos soak: a local network of real node processes (2 miners, 7
    /// masternodes, 2 plain nodes) under load, with faults from a seeded
    /// schedule and invariants checked over RPC all along.
    ///
    /// Always the dev network. Files go to --datadir (which must be empty) or
    /// a new directory under the system's temp dir, removed after a clean
    /// run unless --keep. A failure prints the seed and the fault schedule;
    /// the same --seed and --minutes replay the same schedule.
    Chaos(ChaosArgs),
    /// Media on the network (needs a running node): publish files, broadcast
    /// live, find, view and play content.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Atomic swaps with a peer holding another chain's coin (needs a
    /// running node; docs/bridge.md).
    #[command(subcommand)]
    Bridge(BridgeCommand),
}

/// `rusty-cli bridge …`.
#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Offer GIVE for WANT ("<amount> <network>", e.g. "5 dev" "10 par-dev")
    /// to PEER (a peer id of this chain's network), and follow the swap.
    Swap {
        peer: String,
        give: String,
        want: String,
        /// Return once the offer is sent instead of following the swap.
        #[arg(long)]
        no_wait: bool,
    },
    /// Take a received offer (see `bridge offers`) and follow the swap.
    Accept {
        id: String,
        #[arg(long)]
        no_wait: bool,
    },
    /// One swap: state, txids, when a refund becomes possible, the deadline
    /// to redeem.
    Status { id: String },
    /// Every swap, or those in one state (e.g. funded) or status (e.g.
    /// processing).
    List { state: Option<String> },
    /// Refund our HTLC now (refused before its lock, with the height).
    Refund { id: String },
    /// Offers received and not taken.
    Offers,
}

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Publish a file: the node signs its manifest, keeps it (pinned) and
    /// announces it. With --price it is encrypted and sold. Prints the
    /// content id.
    Publish(PublishArgs),
    /// Content known to the node (published, fetched or announced).
    List,
    /// Content whose title or tags contain every word.
    Search {
        #[arg(required = true)]
        words: Vec<String>,
    },
    /// One content's manifest and local state.
    Info { id: String },
    /// Downloads, live streams, upload counters.
    Status { id: Option<String> },
    /// Fetch content from the network and save it (--output) and/or play it
    /// over HTTP while it downloads (--serve): Range requests for files, an
    /// HLS playlist (/live.m3u8) for live streams.
    View(ViewArgs),
    /// Broadcast a live stream from a file or stdin (e.g. MPEG-TS from ffmpeg).
    Broadcast(BroadcastArgs),
    /// Buy priced content: the wallet pays the creator; once the payment is
    /// final the creator's node releases the key on chain and this node
    /// decrypts while it plays. Prints the purchase's txid.
    Buy { id: String },
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    pub file: PathBuf,
    /// Title [default: the file name].
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// A tag; repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// MIME type [default: from the file extension].
    #[arg(long)]
    pub mime: Option<String>,
    /// Sell it for this many coins: the content is encrypted and its key
    /// released to each buyer on chain.
    #[arg(long, value_name = "COINS")]
    pub price: Option<String>,
    /// Transcode a video into a ladder of renditions (240p … 1080p, none
    /// taller than the source, keyframes aligned) with the system's ffmpeg,
    /// and publish each with an HLS master playlist; prints the master
    /// playlist's id.
    #[arg(long)]
    pub transcode: bool,
}

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Content id (64 hex characters).
    pub id: String,
    /// Save the content here (`-` writes a live stream to stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Serve it over HTTP at this address for a player.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<SocketAddr>,
    /// A live stream is meant to be saved from its first segment (started
    /// with the broadcast): segments before the first one received count
    /// as missing. By default a viewer joins at the live edge, and only
    /// segments lost after that count.
    #[arg(long)]
    pub from_start: bool,
}

#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// Read the input in real time as it arrives.
    #[arg(long)]
    pub live: bool,
    /// The input: a file or `-` for stdin.
    pub input: PathBuf,
    #[arg(long)]
    pub title: Option<String>,
    /// A tag; repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// MIME type [default: video/mp2t].
    #[arg(long)]
    pub mime: Option<String>,
    /// Pace a file to this many kbit/s, as a capture device would deliver it.
    #[arg(long, value_name = "KBPS")]
    pub bitrate: Option<u64>,
    /// Transcode with the system's ffmpeg into a ladder of renditions
    /// (240p… up to the source's height), each a live stream of its own,
    /// tied by a master playlist whose id is printed. ffmpeg paces the
    /// input by its timestamps.
    #[arg(long, conflicts_with_all = ["bitrate", "mime"])]
    pub transcode: bool,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Settings file [default: <datadir>/<network>/config.toml when it exists].
    /// Flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address for the JSON-RPC server [default: 127.0.0.1:<network's RPC port>].
    #[arg(long, help_heading = "RPC server")]
    pub rpc_bind: Option<SocketAddr>,
    /// Mine blocks (default with --dev).
    #[arg(long, overrides_with = "no_mine", help_heading = "Mining")]
    pub mine: bool,
    /// Do not mine, even with --dev.
    #[arg(long, help_heading = "Mining")]
    pub no_mine: bool,
    /// Mining threads [default: 1].
    #[arg(long, help_heading = "Mining")]
    pub mine_threads: Option<usize>,
    /// Pay mined coins here instead of a new wallet address.
    #[arg(long, help_heading = "Mining")]
    pub mine_address: Option<String>,
    /// Run without a wallet.
    #[arg(long, help_heading = "Wallet")]
    pub no_wallet: bool,
    /// Create a wallet if the datadir has none (default with --dev).
    #[arg(long, help_heading = "Wallet")]
    pub create_wallet: bool,
    /// File holding the wallet passphrase (default: empty passphrase).
    #[arg(long, env = "RUSTY_WALLET_PASSPHRASE_FILE", help_heading = "Wallet")]
    pub wallet_passphrase_file: Option<PathBuf>,
    /// Largest mempool, in MB [default: 300].
    #[arg(long, help_heading = "Mempool")]
    pub max_mempool: Option<usize>,
    /// fsync every database write (survives power loss; slower).
    #[arg(long, help_heading = "Storage")]
    pub sync_writes: bool,
    #[command(flatten)]
    pub p2p: P2pArgs,
    /// Run as a masternode: take part in DKGs and sign ChainLocks with the
    /// operator key of --operator-key (needs P2P).
    #[arg(long, requires = "operator_key", help_heading = "Masternode")]
    pub masternode: bool,
    /// File holding the operator's BLS secret key, 64 hex characters (from
    /// `rusty-cli masternode genkey --out FILE`).
    #[arg(long, value_name = "FILE", help_heading = "Masternode")]
    pub operator_key: Option<PathBuf>,
    /// Cap on cached media content (content fetched, not published here), in
    /// MB; the least recently used is evicted beyond it [default: 4096].
    #[arg(long, value_name = "MB", help_heading = "Media")]
    pub media_cache_size: Option<u64>,
    /// Cap on media upload to peers, in KB/s; 0 = none [default: 0].
    /// Blocks and transactions are never held back by media traffic.
    #[arg(long, value_name = "KBPS", help_heading = "Media")]
    pub media_upload_limit: Option<u64>,
    /// How downloads choose and load providers: `classic` (lifetime
    /// average rates, 4 requests each) or `learned` (forgetting rate
    /// estimates, windows sized to the bandwidth-delay product,
    /// expected-completion-time assignment, a bandit when there are more
    /// providers than 8) [default: classic]; see `rusty-cli bench select`.
    #[arg(long, value_name = "POLICY", help_heading = "Media")]
    pub media_provider_policy: Option<rusty_media::selection::PolicyKind>,
    /// Where the media data channel listens: chunks move over plain TCP
    /// beside libp2p (verified chunk by chunk; priced content stays
    /// encrypted), `ADDR` with a fixed port to open in a firewall, `auto`
    /// for the P2P listen IP on a port the system picks, or `off` to keep
    /// every media byte inside libp2p's encrypted connection
    /// [default: auto]; see docs/media.md.
    #[arg(long, value_name = "ADDR|auto|off", help_heading = "Media")]
    pub media_data_bind: Option<rusty_media::service::DataBind>,
    /// Serve media playback (files with Range, HLS) for players and
    /// `stream view --serve` here when the web UI is off: an address,
    /// `auto` (127.0.0.1, a port the system picks) or `off`
    /// [default: auto]; with --ui-bind the UI serves it. See docs/media.md.
    #[arg(long, value_name = "ADDR|auto|off", help_heading = "Media")]
    pub playback_bind: Option<rusty_node::ui::PlaybackBind>,
    /// Serve the web UI (explorer, media, masternodes, governance, wallet)
    /// here: an address, a port, or nothing for 127.0.0.1 on the network's
    /// UI port (main 8480, test 18480, dev 28480). Off by default; a
    /// non-loopback address needs --rpc-user/--rpc-password (docs/ui.md).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "", help_heading = "Web UI and metrics")]
    pub ui_bind: Option<String>,
    /// Serve Ethereum's JSON-RPC (`eth_`, `net_`, `web3_`) without
    /// authentication here, for ethers.js, viem, web3.py and wallets: an
    /// address, a port, or nothing for 127.0.0.1 on the network's port
    /// (dev 28545). Off by default. These methods hold no keys; the node's
    /// RPC port serves them too, behind its credentials (docs/contracts.md).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "", help_heading = "RPC server")]
    pub eth_rpc_bind: Option<String>,
    /// Another `Host` the UI answers to (as host:port), when it is reached
    /// by a name other than its address; repeatable.
    #[arg(long, value_name = "HOST:PORT", help_heading = "Web UI and metrics")]
    pub ui_allow_host: Vec<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics: an address, a port,
    /// or nothing for 127.0.0.1 on the network's metrics port (main 9480,
    /// test 19480, dev 29480). Off by default.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "", help_heading = "Web UI and metrics")]
    pub metrics_bind: Option<String>,
    /// A node of another chain the bridge swaps on, by its RPC:
    /// NETWORK=URL[,cookie=PATH] (e.g. par-dev=http://127.0.0.1:28532,cookie=/home/me/.rusty/par-dev/.cookie);
    /// or an Ethereum node: eth:CHAIN_ID=URL,key=PATH[,contract=0x…] (the
    /// key file holds the hex secp256k1 key the bridge pays from);
    /// repeatable. This node's own chain needs none (docs/bridge.md).
    #[arg(long, value_name = "NETWORK=URL", help_heading = "Bridge")]
    pub bridge_chain: Vec<String>,
    /// Confirmations a swap's lock needs to count as final when it has no
    /// ChainLock (default: 1 on dev networks, 6 on ours elsewhere, 64 on
    /// Ethereum); a ChainLocked lock is final at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Bridge")]
    pub bridge_confirmations: Option<u64>,
    /// Accept every swap offer this node can carry out (both networks
    /// reachable), at the offered terms: a market maker for demos and tests.
    #[arg(long, help_heading = "Bridge")]
    pub bridge_auto_accept: bool,
}

/// Peer-to-peer flags of `node`.
#[derive(Debug, Args)]
#[command(next_help_heading = "P2P network")]
pub struct P2pArgs {
    /// Listen for peers on this multiaddr; repeatable [default:
    /// /ip4/0.0.0.0/tcp/<P2P port> and /ip4/0.0.0.0/udp/<P2P port>/quic-v1, the
    /// P2P port being 8433 on main, 18433 on test, 28433 on dev].
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Connect to this peer at start and keep it connected; repeatable. With or
    /// without a /p2p/<peer id> suffix, e.g. /ip4/192.0.2.1/tcp/8433/p2p/12D3Koo…
    #[arg(long = "bootnode", value_name = "MULTIADDR")]
    pub bootnodes: Vec<String>,
    /// Most peers connected at once (inbound and outbound) [default: 50].
    #[arg(long, value_name = "N")]
    pub max_peers: Option<usize>,
    /// Do not look for peers on the local network by mDNS (on by default for
    /// dev only).
    #[arg(long)]
    pub no_mdns: bool,
    /// Run without P2P networking: the node stays alone on its chain.
    #[arg(long)]
    pub no_network: bool,
    /// The address others reach this node at (a public node's or a
    /// masternode's), taken as confirmed without testing; repeatable, e.g.
    /// /ip4/203.0.113.5/tcp/8433. Without it AutoNAT finds out.
    #[arg(long = "external-addr", value_name = "MULTIADDR")]
    pub external_addrs: Vec<String>,
    /// Relay circuits for peers behind NAT: on by default, advertised only
    /// while this node is reachable (limits: 128 reservations, 16 circuits,
    /// each 2 min and 128 KiB per direction).
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub relay_server: Option<bool>,
    /// Testing only (dev network): the named critical task panics once the
    /// node is up, to show that supervision stops the node.
    #[arg(long, value_name = "TASK", hide = true, value_parser = ["chain"])]
    pub inject_panic: Option<String>,
    /// Testing only (dev network): run the node's clock this many seconds
    /// ahead (negative: behind) of the system clock (`rusty-cli chaos`).
    #[arg(long, value_name = "SECS", hide = true, allow_negative_numbers = true)]
    pub clock_skew: Option<i64>,
}

#[derive(Debug, Args)]
pub struct LocalnetArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// How many of them mine (the first ones).
    #[arg(long, default_value_t = 1)]
    pub miners: usize,
    /// Node i serves RPC on PORT+i and P2P on PORT+100+i; 0 picks free ports.
    #[arg(long, value_name = "PORT", default_value_t = 28500)]
    pub base_port: u16,
    /// Miner threads per mining node.
    #[arg(long, default_value_t = 1)]
    pub mine_threads: usize,
    /// The last N nodes run as masternodes: node 0 funds them, each
    /// registers itself, and quorums form and ChainLock blocks on their own
    /// (--nodes grows to fit N plus the miners).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub masternodes: usize,
    /// Chains to run, comma-separated: rsc, par, arc. With more than one,
    /// each gets --nodes dev nodes (files in <datadir>/node<i>/<network>,
    /// ports +1000 per chain), every node mines on the other chains, and
    /// the RSC node i swaps on them through their node i; nodes 1 and up
    /// accept every offer, so node 0 swaps at once (docs/bridge.md).
    #[arg(long, value_delimiter = ',', default_value = "rsc")]
    pub chains: Vec<rusty_shared_types::Chain>,
}

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Length of the fault phase, in minutes (set-up comes on top).
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// Seed of the fault schedule and the load [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the nodes' files after a clean run.
    #[arg(long)]
    pub keep: bool,
    /// A node whose resident memory passes this breaks an invariant.
    #[arg(long, value_name = "MB", default_value_t = 1024)]
    pub max_rss_mb: u64,
    /// After a heal, every node must be on one tip within this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 90)]
    pub converge_secs: u64,
    /// Also write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Keep every masternode on the side of miner 1 in partitions (by
    /// default partitions split the masternodes too, across DKGs).
    #[arg(long)]
    pub masternodes_together: bool,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// A new receiving address.
    Address,
    /// Balances: trusted, pending, immature.
    Balance,
    /// Pay an address: `rusty-cli wallet send <address> <amount in RSC>`.
    Send { address: String, amount: String },
    /// Recent wallet transactions.
    List {
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum MasternodeCommand {
    /// Generate a BLS operator key. With --out: write the secret key (hex) to
    /// FILE, readable by its owner only, and print the public key; without:
    /// print both as JSON {"secret", "public"}. Needs no running node.
    Genkey {
        /// Write the secret key here (an existing file is never overwritten).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Register a masternode from the node's wallet (`protx register`): pays
    /// the collateral to a new wallet address and prints the proTxHash.
    Register(RegisterArgs),
    /// This node's masternode (`masternode status`); the node must run with
    /// --masternode.
    Status,
    /// Every registered masternode (`masternode list`).
    List,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The operator's BLS public key (96 hex characters).
    #[arg(
        long,
        value_name = "HEX",
        required_unless_present = "operator_key",
        conflicts_with = "operator_key"
    )]
    pub operator_pubkey: Option<String>,
    /// Or the operator key file; its public key is registered.
    #[arg(long, value_name = "FILE")]
    pub operator_key: Option<PathBuf>,
    /// Where other masternodes reach the operator's node: its public multiaddr
    /// with peer id, e.g. /ip4/192.0.2.1/tcp/8433/p2p/12D3KooW… (see
    /// `rusty-cli rpc getnetworkinfo`, localmultiaddrs).
    #[arg(long, value_name = "MULTIADDR")]
    pub service: String,
    /// The operator's share of the masternode reward, in basis points (0 to
    /// 10000).
    #[arg(long, value_name = "BPS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=10_000))]
    pub reward: u16,
    /// Pay rewards here [default: a new wallet address].
    #[arg(long, value_name = "ADDRESS")]
    pub payout: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Pay coins from the node's wallet into the EVM account ADDRESS (0x
    /// and 40 hex digits); it is credited when the deposit is mined, at
    /// 10^18 wei-units per coin. Prints the txid.
    Deposit {
        address: String,
        /// Coins, e.g. 1.5.
        amount: String,
    },
    /// An EVM account at the tip: balance, nonce, whether it is a contract.
    Balance { address: String },
    /// The address of the wallet's own EVM account (deposit to it, then
    /// deploy and call without --key).
    Address,
    /// Withdraw coins from an EVM account (--key's, or the wallet's) to an
    /// address of this chain: a call of the withdraw contract; the block
    /// that mines it pays the coins in its settlement transaction.
    Withdraw {
        /// The address to pay (bech32m, this network's).
        address: String,
        /// Coins, whole base units (at most 8 decimals).
        amount: String,
        /// File holding the secp256k1 key (hex) of the account to withdraw
        /// from [default: the wallet's EVM account].
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
    },
    /// Deploy a contract: sign a creation with the key in --key (or the
    /// wallet's EVM key), send it, wait for it to be mined; prints the
    /// contract's address.
    Deploy {
        /// File with the creation bytecode, hex (solc's `bin`).
        bytecode: std::path::PathBuf,
        /// ABI-encoded constructor arguments, hex, appended to the code.
        #[arg(long, value_name = "HEX")]
        args: Option<String>,
        /// File holding the secp256k1 key (hex) that signs and pays
        /// [default: the wallet's EVM account].
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
        /// Coins sent to the constructor.
        #[arg(long)]
        value: Option<String>,
        /// Gas limit [default: the estimate plus 20 %].
        #[arg(long)]
        gas: Option<u64>,
    },
    /// Call a contract: with --key or --send, a signed transaction (by the
    /// key's account, or the wallet's), waiting for its receipt; without,
    /// a read (eth_call) printing the output.
    Call {
        address: String,
        /// The call data, hex (selector and ABI-encoded arguments).
        data: String,
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
        /// Send a transaction from the wallet's EVM account.
        #[arg(long)]
        send: bool,
        #[arg(long)]
        value: Option<String>,
        #[arg(long)]
        gas: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Submit a proposal from the node's wallet; the transaction burns the
    /// proposal fee (1 RSC on dev, 5 on main). Prints its hash.
    Submit(GovSubmitArgs),
    /// Vote on a proposal with the voting keys the wallet holds.
    Vote {
        /// The proposal's hash.
        proposal: String,
        /// yes, no or abstain.
        #[arg(value_parser = ["yes", "no", "abstain"])]
        outcome: String,
        /// Vote as every masternode whose voting key the wallet holds (the
        /// default).
        #[arg(long, conflicts_with = "masternode")]
        all: bool,
        /// Vote as this masternode only (its proTxHash).
        #[arg(long, value_name = "PROTXHASH")]
        masternode: Option<String>,
    },
    /// Live proposals with their tallies.
    List {
        /// Only proposals in this state.
        #[arg(long, value_parser = ["all", "open", "closed", "passing", "failing"], default_value = "all")]
        state: String,
    },
    /// One proposal: tally, threshold, margin, projected payout height.
    Show { proposal: String },
    /// The treasury's balance and the next superblock's budget.
    Treasury,
    /// Governed values in force, their bounds and pending changes.
    Params,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["payment", "param"])))]
pub struct GovSubmitArgs {
    /// A treasury payment (with --payee and --amount).
    #[arg(long, requires_all = ["payee", "amount"])]
    pub payment: bool,
    /// A parameter change: reward-split, max-block-size or min-relay-fee
    /// (with --value).
    #[arg(long, value_name = "NAME", requires = "value",
          value_parser = ["reward-split", "max-block-size", "min-relay-fee"])]
    pub param: Option<String>,
    /// The new value: miner,masternode,treasury basis points for
    /// reward-split (e.g. 4000,4500,1500); bytes; base units per 1000 bytes.
    #[arg(long)]
    pub value: Option<String>,
    /// Who the treasury pays.
    #[arg(long, value_name = "ADDRESS")]
    pub payee: Option<String>,
    /// Coins per superblock.
    #[arg(long, value_name = "COINS")]
    pub amount: Option<String>,
    /// Superblocks to be paid at (1 to 12).
    #[arg(long, default_value_t = 1)]
    pub superblocks: u16,
    /// The first superblock [default: the next one whose tally is ahead].
    #[arg(long, value_name = "HEIGHT")]
    pub first_superblock: Option<u64>,
    /// At most 64 bytes.
    #[arg(long)]
    pub title: String,
    #[arg(long, default_value = "")]
    pub url: String,
    /// BLAKE3 of the proposal document, hex.
    #[arg(long, value_name = "HEX")]
    pub doc_hash: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MineCommand {
    /// Mine `n` blocks now (dev network) to --address or a new wallet address.
    Generate {
        n: u64,
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// ERC-20 transfers connected by the chain (EVM, state trie, receipts,
    /// RocksDB) beside revm alone executing the same transactions in
    /// memory; prints tx/s, Mgas/s, their ratio and the state-root time
    /// per block.
    Erc20 {
        /// Transfers to time.
        #[arg(long, default_value_t = 5000)]
        transfers: usize,
        /// Runs of the gossiped connect and of raw revm (alternating; each
        /// reports its fastest).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
        rounds: u16,
    },
    /// Connect blocks of pay-to-pubkey-hash transactions into RocksDB with full
    /// signature checks; prints tx/s beside the raw Ed25519 batch-verify rate.
    Connect {
        /// Blocks to connect.
        #[arg(long, default_value_t = 10)]
        blocks: usize,
        /// Transactions per block.
        #[arg(long, default_value_t = 1000)]
        txs: usize,
        /// Signature verification threads [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Dev nodes on loopback in this process: initial-sync throughput from 1
    /// and from 3 peers, and tx gossip latency across 5 nodes, beside raw
    /// loopback TCP throughput measured in the same run.
    Network {
        /// Blocks of transactions in the synced chain.
        #[arg(long, default_value_t = rusty_bench::network::NetBenchConfig::default().blocks)]
        blocks: usize,
        /// Pay-to-pubkey-hash transactions per block.
        #[arg(long, default_value_t = rusty_bench::network::NetBenchConfig::default().txs_per_block)]
        txs: usize,
        /// Transactions sent in the gossip phase.
        #[arg(long, default_value_t = rusty_bench::network::NetBenchConfig::default().gossip_txs)]
        gossip_txs: usize,
    },
    /// Adaptive bitrate: a throughput rule, BBA and BOLA-E over seeded
    /// bandwidth traces, scored with MPC's QoE beside the offline optimum;
    /// simulated, then played on real nodes (a provider whose upload token
    /// bucket follows the trace, a viewer node choosing renditions, a player
    /// paced at playback speed).
    Abr {
        /// Traces.
        #[arg(long, default_value_t = rusty_bench::abr::AbrBenchConfig::default().traces)]
        traces: u64,
        /// First trace's seed (the others follow it).
        #[arg(long, default_value_t = rusty_bench::abr::AbrBenchConfig::default().seed)]
        seed: u64,
        /// Segments per trace.
        #[arg(long, default_value_t = rusty_bench::abr::AbrBenchConfig::default().segments)]
        segments: usize,
        /// Traces also played on real nodes, each rule in real time (0:
        /// simulation only).
        #[arg(long, default_value_t = rusty_bench::abr::AbrBenchConfig::default().node_traces)]
        node_traces: usize,
        /// Segments (seconds of playback) per trace on real nodes.
        #[arg(long, default_value_t = rusty_bench::abr::AbrBenchConfig::default().node_segments)]
        node_segments: usize,
    },
    /// Provider policies (the classic heuristic, the learner) beside an
    /// oracle that knows the true schedule, over seeded simulations of
    /// throttled providers: fetch time, stream start-up and stalls.
    Select {
        /// Seeds per scenario.
        #[arg(long, default_value_t = rusty_bench::select::SelectBenchConfig::default().seeds)]
        seeds: u64,
        /// Also on real nodes: 6 providers throttled by --media-upload-limit,
        /// this many trials of each policy (0: simulation only).
        #[arg(long, default_value_t = 0)]
        node_trials: usize,
    },
    /// BLS threshold recovery and aggregate verification beside raw blst,
    /// then a dev localnet of 1 miner and 6 masternodes: forms a quorum and
    /// measures block arrival → verified ChainLock on every node (p50/p95),
    /// beside the loopback TCP round trip measured in the same run.
    Chainlock {
        /// Blocks measured.
        #[arg(long, default_value_t = rusty_bench::chainlock::ClBenchConfig::default().blocks)]
        blocks: usize,
    },
    /// The media layer on dev nodes over loopback: file transfer throughput
    /// from one and from three providers beside raw loopback TCP, block
    /// propagation and ChainLocks with and without a transfer beside them,
    /// then a live stream to N viewers: the broadcaster's upload share and
    /// input → viewer latency (p50/p95).
    Media {
        /// Transferred file size, MiB.
        #[arg(long, default_value_t = rusty_bench::media::MediaBenchConfig::default().file_mib)]
        file_mib: usize,
        /// Blocks timed with the network idle, and at most as many beside
        /// a transfer.
        #[arg(long, default_value_t = rusty_bench::media::MediaBenchConfig::default().blocks)]
        blocks: usize,
        /// Blocks whose ChainLocks are timed in each of three phases
        /// (idle, beside transfers, idle again) on a network with a
        /// masternode quorum; 0 skips them.
        #[arg(long, default_value_t = rusty_bench::media::MediaBenchConfig::default().chainlock_blocks)]
        chainlock_blocks: usize,
        /// Live viewers.
        #[arg(long, default_value_t = rusty_bench::media::MediaBenchConfig::default().viewers)]
        viewers: usize,
        /// Seconds of live input.
        #[arg(long, default_value_t = rusty_bench::media::MediaBenchConfig::default().live_secs)]
        live_secs: u64,
        /// Live input bitrate, kbit/s.
        #[arg(long, default_value_t = rusty_bench::media::MediaBenchConfig::default().live_kbps)]
        kbps: u64,
        /// Runs of raw TCP and of the 1-provider transfer (alternating;
        /// each reports its fastest).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
        rounds: u16,
    },
    /// BLS threshold recovery (t = 3, 30, 240) and aggregate verification,
    /// each beside the raw blst operations it is made of.
    Bls {
        /// Repetitions per figure.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
    },
    /// A dev chain in RocksDB with masternodes registered, payment proposals
    /// and every masternode's votes on chain: connecting the snapshot block
    /// and the superblock (treasury payouts, pruning) beside ordinary blocks
    /// of the same size, in fresh copies of the database.
    /// An atomic swap between RSC and PAR dev localnets (blocks at the dev
    /// spacings): offer to both sides completed, and the time in each
    /// state, beside the block spacing; with 1 confirmation, with N, and
    /// with N or a ChainLock (masternodes on RSC).
    Swap {
        /// Swaps per way of counting finality, one after another.
        #[arg(long, default_value_t = rusty_bench::swap::SwapBenchConfig::default().swaps)]
        swaps: usize,
        /// Confirmations without a ChainLock in the second and third ways.
        #[arg(long, default_value_t = rusty_bench::swap::SwapBenchConfig::default().confirmations)]
        confirmations: u64,
        /// Masternodes on RSC in the ChainLock way.
        #[arg(long, default_value_t = rusty_bench::swap::SwapBenchConfig::default().masternodes)]
        masternodes: usize,
    },
    Superblock {
        /// Masternodes registered (each votes on every proposal).
        #[arg(long, default_value_t = rusty_bench::superblock::SuperblockBenchConfig::default().masternodes)]
        masternodes: usize,
        /// Payment proposals, all paid at the superblock.
        #[arg(long, default_value_t = rusty_bench::superblock::SuperblockBenchConfig::default().proposals)]
        proposals: usize,
        /// Pay-to-pubkey-hash transactions in every compared block.
        #[arg(long, default_value_t = rusty_bench::superblock::SuperblockBenchConfig::default().txs_per_block)]
        txs: usize,
        /// Fresh copies of the database the measured blocks connect into.
        #[arg(long, default_value_t = rusty_bench::superblock::SuperblockBenchConfig::default().runs)]
        runs: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum AugyCommand {
    /// Pack an Opus (Ogg) or AAC (ADTS) audio file and its description into
    /// a .augy file.
    Pack(AugyPackArgs),
    /// Check a .augy file (every field and the checksum) and print its
    /// fields; the audio is streamed, never loaded whole.
    Inspect {
        /// The .augy file.
        file: PathBuf,
        /// Print JSON instead of aligned text.
        #[arg(long)]
        json: bool,
    },
    /// Check a .augy file and write its audio out.
    Unpack {
        /// The .augy file.
        file: PathBuf,
        /// Write the audio here (only once the whole file checked out).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct AugyPackArgs {
    /// The audio: Ogg/Opus for --codec opus, ADTS/AAC for --codec aac.
    #[arg(long, value_name = "FILE")]
    pub audio: PathBuf,
    /// The audio's codec.
    #[arg(long)]
    pub codec: AugyCodec,
    /// Title (1 to 200 bytes of UTF-8).
    #[arg(long)]
    pub title: String,
    /// Author (up to 200 bytes).
    #[arg(long, default_value = "")]
    pub author: String,
    /// Description (up to 4000 bytes; may hold line feeds).
    #[arg(long, default_value = "")]
    pub description: String,
    /// Subject taught (1 to 64 bytes), e.g. "biology".
    #[arg(long)]
    pub subject: String,
    /// Level of the material.
    #[arg(long)]
    pub difficulty: AugyDifficulty,
    /// Length of the audio in seconds, up to millisecond precision (e.g.
    /// 754 or 754.250); at most 24 hours.
    #[arg(long, value_name = "SECS", value_parser = crate::augy::parse_duration_ms)]
    pub duration: u64,
    /// Sample rate in Hz: 8000, 16000, 24000, 44100 or 48000.
    #[arg(long, default_value_t = 48_000)]
    pub sample_rate: u32,
    /// Audio channels, 1 to 8.
    #[arg(long, default_value_t = 2)]
    pub channels: u8,
    /// Write the .augy file here (only once it is complete).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `--codec` of `augy pack`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AugyCodec {
    /// Opus in an Ogg stream.
    Opus,
    /// AAC in an ADTS stream.
    Aac,
}

/// `--difficulty` of `augy pack`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AugyDifficulty {
    Beginner,
    Intermediate,
    Advanced,
    Expert,
}
