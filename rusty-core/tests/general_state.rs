//! ethereum/tests GeneralStateTests (a vendored subset, see
//! `tests/data/GeneralStateTests/README.md`) through our stack: the
//! signed transaction decoded by `rusty_crypto::eth::tx`, run by
//! `rusty_vm::evm` (revm behind our `EvmState`/`DatabaseRef`) over the
//! `pre` state in our trie configured with Keccak-256, the changes written
//! by `rusty_core::contracts::write_change` (the chain's own code), then
//! the state root and the logs hash compared with the `Cancun` post-state.

use std::{collections::HashMap, path::Path};

use ruint::aliases::U256;
use rusty_core::contracts::write_change;
use rusty_crypto::eth::{keccak256, tx as eth_tx};
use rusty_shared_types::rlp::{self, Item};
use rusty_storage::{
    state::{Account, StateTrie, KECCAK_EMPTY},
    trie::{NodeStore, TrieError, TrieHasher},
};
use rusty_vm::evm::{self, BlockContext, EvmAccount, EvmState};
use serde_json::Value;

struct Keccak;

impl TrieHasher for Keccak {
    fn hash(data: &[u8]) -> [u8; 32] {
        keccak256(data)
    }
}

type Nodes = HashMap<[u8; 32], Vec<u8>>;

/// Nodes in a map shared by the account trie and the storage tries (and
/// the threads a large commit uses).
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Nodes>>);

impl NodeStore for Shared {
    fn node(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, TrieError> {
        Ok(self.0.lock().expect("node map").get(hash).cloned())
    }
}

/// The state under test: a Keccak trie over a map, and code by hash.
struct World {
    store: Shared,
    trie: StateTrie<Keccak, Shared>,
    code: HashMap<[u8; 32], Vec<u8>>,
}

impl EvmState for World {
    fn account(&self, address: &[u8; 20]) -> Result<Option<EvmAccount>, String> {
        Ok(self
            .trie
            .account(address)
            .map_err(|e| e.to_string())?
            .map(|a| EvmAccount {
                nonce: a.nonce,
                balance: a.balance,
                code_hash: a.code_hash,
            }))
    }
    fn storage(&self, address: &[u8; 20], slot: &[u8; 32]) -> Result<[u8; 32], String> {
        self.trie.storage(address, slot).map_err(|e| e.to_string())
    }
    fn code(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.code.get(hash).cloned())
    }
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    hex::decode(s.trim_start_matches("0x")).expect("hex")
}

fn word(v: &Value) -> [u8; 32] {
    let s = v.as_str().expect("hex quantity").trim_start_matches("0x");
    U256::from_str_radix(if s.is_empty() { "0" } else { s }, 16)
        .expect("quantity")
        .to_be_bytes()
}

fn quantity(v: &Value) -> u64 {
    u64::try_from(U256::from_be_bytes(word(v))).expect("64-bit")
}

fn address(s: &str) -> [u8; 20] {
    hex::decode(s.trim_start_matches("0x"))
        .expect("hex")
        .try_into()
        .expect("20 bytes")
}

fn pre_state(pre: &serde_json::Map<String, Value>) -> World {
    let store = Shared::default();
    let mut world = World {
        store: store.clone(),
        trie: StateTrie::empty(store),
        code: HashMap::new(),
    };
    for (addr, a) in pre {
        let addr = address(addr);
        let code = hex_bytes(&a["code"]);
        let code_hash = if code.is_empty() {
            KECCAK_EMPTY
        } else {
            keccak256(&code)
        };
        world.code.insert(code_hash, code);
        let mut account = Account::empty::<Keccak>();
        account.nonce = quantity(&a["nonce"]);
        account.balance = word(&a["balance"]);
        account.code_hash = code_hash;
        world.trie.set_account(&addr, &account).expect("set");
        for (slot, value) in a["storage"].as_object().expect("storage") {
            world
                .trie
                .set_storage(&addr, &word(&Value::String(slot.clone())), &word(value))
                .expect("set storage");
        }
    }
    world
}

/// keccak256(rlp(logs)), as the tests' `logs` field.
fn logs_hash(logs: &[evm::EvmLog]) -> [u8; 32] {
    let items = logs
        .iter()
        .map(|l| {
            Item::List(vec![
                Item::Bytes(l.address.to_vec()),
                Item::List(l.topics.iter().map(|t| Item::Bytes(t.to_vec())).collect()),
                Item::Bytes(l.data.clone()),
            ])
        })
        .collect();
    keccak256(&rlp::encode(&Item::List(items)))
}

/// Runs one post-state; `Err` says what differed.
fn run_case(test: &Value, post: &Value) -> Result<(), String> {
    let env = &test["env"];
    let mut world = pre_state(test["pre"].as_object().expect("pre"));
    let (pre_root, nodes) = world.trie.commit().map_err(|e| e.to_string())?;
    for (h, n) in nodes {
        world.trie_store_insert(h, n);
    }
    let expected_root = word(&post["hash"]);
    let expected_logs = word(&post["logs"]);
    let raw = hex_bytes(&post["txbytes"]);
    let block = BlockContext {
        chain_id: 1,
        number: quantity(&env["currentNumber"]),
        timestamp: quantity(&env["currentTimestamp"]),
        gas_limit: quantity(&env["currentGasLimit"]),
        base_fee: quantity(&env["currentBaseFee"]),
        coinbase: address(env["currentCoinbase"].as_str().expect("coinbase")),
        prevrandao: env.get("currentRandom").map_or([0; 32], word),
        ancestors: Vec::new(),
    };
    let invalid = post.get("expectException").is_some();
    let outcome = eth_tx::decode(&raw)
        .map_err(|e| e.to_string())
        .and_then(|tx| {
            let call = rusty_core::contracts::exec::call_of(&tx);
            evm::execute(&world, &block, &call).map_err(|e| e.to_string())
        });
    let (root, logs) = match outcome {
        Ok(outcome) => {
            let mut code = HashMap::new();
            for change in &outcome.changes {
                write_change(&mut world.trie, change, &mut code, |_, _| {})
                    .map_err(|e| e.to_string())?;
            }
            let (root, nodes) = world.trie.commit().map_err(|e| e.to_string())?;
            for (h, n) in nodes {
                world.trie_store_insert(h, n);
            }
            (root, logs_hash(&outcome.logs))
        }
        // A refused transaction leaves the state as it was.
        Err(_) if invalid => (pre_root, logs_hash(&[])),
        Err(why) => return Err(format!("refused: {why}")),
    };
    if invalid && root != pre_root {
        return Err("an invalid transaction changed the state".into());
    }
    if root != expected_root {
        return Err(format!(
            "state root {} expected {}",
            hex::encode(root),
            hex::encode(expected_root)
        ));
    }
    if logs != expected_logs {
        return Err("logs hash differs".into());
    }
    Ok(())
}

impl World {
    fn trie_store_insert(&mut self, hash: [u8; 32], node: Vec<u8>) {
        self.store.0.lock().expect("node map").insert(hash, node);
    }
}

fn json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// Cases where our stack ends in another state root than the tests expect,
/// by test name; each is checked to still fail, so a fix shows.
///
/// - `create2collisionStorageParis`, `RevertInCreateInInitCreate2Paris`:
///   EIP-7610 (a CREATE2 onto an address that has storage but no code or
///   nonce must fail). revm decides a collision from the account's nonce and
///   code hash; `DatabaseRef` gives it no storage root, so such an address
///   looks free. Unreachable on our chain (no account gets storage without
///   code), but a divergence from Ethereum.
const KNOWN_DIVERGENT: [&str; 2] = [
    "create2collisionStorageParis",
    "RevertInCreateInInitCreate2Paris",
];

#[test]
fn general_state_tests_cancun_subset() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join("GeneralStateTests");
    let mut files = Vec::new();
    json_files(&root, &mut files);
    files.sort();
    let (mut passed, mut failed, mut known) = (0usize, Vec::new(), Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let tests: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("json");
        for (name, test) in &tests {
            let Some(posts) = test["post"].get("Cancun").and_then(Value::as_array) else {
                continue;
            };
            for (i, post) in posts.iter().enumerate() {
                match run_case(test, post) {
                    Ok(()) => passed += 1,
                    Err(_) if KNOWN_DIVERGENT.contains(&name.as_str()) => known.push(name.clone()),
                    Err(why) => failed.push(format!("{name}[{i}]: {why}")),
                }
            }
        }
    }
    eprintln!(
        "GeneralStateTests: {passed} passed, {} known divergences, {} failed, {} files",
        known.len(),
        failed.len(),
        files.len()
    );
    assert!(passed > 600, "only {passed} cases passed");
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    for name in KNOWN_DIVERGENT {
        assert!(
            known.iter().any(|k| k == name),
            "{name} passes now: take it off the list"
        );
    }
    assert_eq!(known.len(), 4, "the known divergences are 4 cases");
}
