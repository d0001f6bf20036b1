//! `rusty-cli contract`: the account world from the command line.
//!
//! `deposit` and `balance` use the node's wallet RPC; `deploy` and `call`
//! sign Ethereum transactions with a secp256k1 key from a file (`--key`)
//! and send them through the node's Ethereum methods, as any Ethereum
//! tool would, then wait for the receipt.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rusty_crypto::eth::{
    address_hex, parse_address,
    tx::{EthTxFields, EthTxType},
    EthKey,
};
use rusty_node::rpc::api::{contract::ContractApiClient, eth::EthApiClient};
use rusty_node::rpc::remote::Remote;
use serde_json::{json, Value};

use crate::{
    args::{ContractCommand, GlobalArgs},
    client::{connect, print, rpc_error},
};

/// How long `deploy` and `call` wait for their transaction to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn hex_bytes(text: &str, what: &str) -> Result<Vec<u8>> {
    let t = text.trim();
    hex::decode(t.strip_prefix("0x").unwrap_or(t)).with_context(|| format!("{what} is not hex"))
}

fn hex_u64(v: &str, what: &str) -> Result<u64> {
    u64::from_str_radix(v.trim_start_matches("0x"), 16)
        .with_context(|| format!("{what}: {v:?} is not a hex quantity"))
}

fn read_key(path: &std::path::Path) -> Result<EthKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    EthKey::from_hex(text.trim())
        .map_err(|e| anyhow::anyhow!("the key file {}: {e}", path.display()))
}

/// Coins (up to 18 decimals) as 32-byte big-endian wei-units.
fn coins_to_wei(text: &str) -> Result<[u8; 32]> {
    rusty_node::rpc::contract::coins_to_wei(text).map_err(anyhow::Error::msg)
}

/// Who signs: a secp256k1 key from a file, or the node's wallet (its EVM
/// account, `contract_send`).
enum Signer {
    Key(EthKey),
    Wallet,
}

impl Signer {
    fn from_arg(key: Option<&std::path::Path>) -> Result<Signer> {
        key.map_or(Ok(Signer::Wallet), |k| read_key(k).map(Signer::Key))
    }
}

/// Sends a transaction signed by `signer` and waits for its receipt.
fn transact(
    c: &Remote,
    signer: &Signer,
    to: Option<[u8; 20]>,
    input: Vec<u8>,
    value: Option<&str>,
    gas: Option<u64>,
) -> Result<Value> {
    let hash = match signer {
        Signer::Key(key) => {
            let value = value.map(coins_to_wei).transpose()?.unwrap_or([0; 32]);
            send_signed(c, key, to, input, value, gas)?
        }
        Signer::Wallet => c
            .run(ContractApiClient::send(
                c.api(),
                to.map(|t| address_hex(&t)),
                format!("0x{}", hex::encode(&input)),
                value.map(str::to_owned),
                gas,
            ))
            .map_err(rpc_error)?,
    };
    wait_receipt(c, &hash)
}

/// Signs a type-2 transaction with `key` and sends it; its hash.
fn send_signed(
    c: &Remote,
    key: &EthKey,
    to: Option<[u8; 20]>,
    input: Vec<u8>,
    value: [u8; 32],
    gas: Option<u64>,
) -> Result<String> {
    let api = c.api();
    let from = address_hex(&key.address());
    let chain_id = hex_u64(&c.run(api.chain_id()).map_err(rpc_error)?, "chain id")?;
    let nonce = hex_u64(
        &c.run(api.get_transaction_count(from.clone(), Some(json!("pending"))))
            .map_err(rpc_error)?,
        "nonce",
    )?;
    let base_fee = hex_u64(&c.run(api.gas_price()).map_err(rpc_error)?, "gas price")?;
    let mut call = json!({ "from": from, "data": format!("0x{}", hex::encode(&input)) });
    if let Some(to) = to {
        call["to"] = json!(address_hex(&to));
    }
    if value != [0; 32] {
        call["value"] = json!(format!("0x{}", hex::encode(value)));
    }
    let gas = match gas {
        Some(g) => g,
        None => {
            let estimate = c.run(api.estimate_gas(call, None)).map_err(rpc_error)?;
            // A margin over the estimate, as wallets add.
            hex_u64(&estimate, "gas estimate")?.saturating_mul(6) / 5
        }
    };
    let fields = EthTxFields {
        tx_type: EthTxType::DynamicFee,
        chain_id: Some(chain_id),
        nonce,
        max_priority_fee_per_gas: 0,
        max_fee_per_gas: u128::from(base_fee) * 2,
        gas_limit: gas,
        to,
        value,
        input,
        access_list: Vec::new(),
    };
    let raw = fields
        .sign(key)
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    c.run(api.send_raw_transaction(format!("0x{}", hex::encode(raw))))
        .map_err(rpc_error)
}

/// Waits for `hash` to be mined, printing progress on stderr; its receipt.
fn wait_receipt(c: &Remote, hash: &str) -> Result<Value> {
    let api = c.api();
    let hash = hash.to_owned();
    eprintln!("sent {hash}; waiting for it to be mined…");
    let started = Instant::now();
    loop {
        let receipt = c
            .run(api.get_transaction_receipt(hash.clone()))
            .map_err(rpc_error)?;
        if !receipt.is_null() {
            if receipt["status"] != json!("0x1") {
                bail!("transaction {hash} was mined but failed (reverted); receipt: {receipt}");
            }
            return Ok(receipt);
        }
        if started.elapsed() > RECEIPT_TIMEOUT {
            bail!(
                "transaction {hash} was not mined within {} s",
                RECEIPT_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn run(g: &GlobalArgs, cmd: &ContractCommand) -> Result<()> {
    let c = connect(g)?;
    let api = c.api();
    match cmd {
        ContractCommand::Deposit { address, amount } => {
            let txid = c
                .run(ContractApiClient::deposit(
                    api,
                    address.clone(),
                    Value::String(amount.clone()),
                ))
                .map_err(rpc_error)?;
            println!("{txid}");
        }
        ContractCommand::Address => {
            let a = c.run(ContractApiClient::address(api)).map_err(rpc_error)?;
            println!("{a}");
        }
        ContractCommand::Balance { address } => {
            let b = c
                .run(ContractApiClient::balance(api, address.clone()))
                .map_err(rpc_error)?;
            print(&serde_json::to_value(b)?);
        }
        ContractCommand::Withdraw {
            address,
            amount,
            key,
        } => {
            let to = rusty_shared_types::Address::parse_for(address, g.network())
                .map_err(|e| anyhow::anyhow!("invalid address {address:?}: {e}"))?;
            rusty_shared_types::Amount::parse_coins(amount)
                .map_err(|_| anyhow::anyhow!("invalid amount {amount:?} (at most 8 decimals)"))?;
            let signer = Signer::from_arg(key.as_deref())?;
            let receipt = transact(
                &c,
                &signer,
                Some(rusty_core::contracts::withdraw::WITHDRAW_ADDRESS),
                to.lock_script().as_bytes().to_vec(),
                Some(amount),
                None,
            )?;
            print(&json!({
                "transaction": receipt["transactionHash"],
                "block": receipt["blockNumber"],
                "paid": to.to_string(),
                "amount": amount,
            }));
        }
        ContractCommand::Deploy {
            bytecode,
            args,
            key,
            value,
            gas,
        } => {
            let text = std::fs::read_to_string(bytecode)
                .with_context(|| format!("reading {}", bytecode.display()))?;
            let mut code = hex_bytes(&text, "the bytecode file")?;
            if let Some(a) = args {
                code.extend(hex_bytes(a, "--args")?);
            }
            let signer = Signer::from_arg(key.as_deref())?;
            let receipt = transact(&c, &signer, None, code, value.as_deref(), *gas)?;
            print(&json!({
                "contract": receipt["contractAddress"],
                "transaction": receipt["transactionHash"],
                "block": receipt["blockNumber"],
                "gasUsed": receipt["gasUsed"],
            }));
        }
        ContractCommand::Call {
            address,
            data,
            key,
            send,
            value,
            gas,
        } => {
            let to = parse_address(address)
                .map_err(|_| anyhow::anyhow!("invalid address {address:?}"))?;
            let input = hex_bytes(data, "the call data")?;
            if key.is_some() || *send {
                let signer = Signer::from_arg(key.as_deref())?;
                let receipt = transact(&c, &signer, Some(to), input, value.as_deref(), *gas)?;
                print(&receipt);
            } else {
                let mut call =
                    json!({ "to": address_hex(&to), "data": format!("0x{}", hex::encode(&input)) });
                if let Some(v) = value.as_deref() {
                    call["value"] = json!(format!("0x{}", hex::encode(coins_to_wei(v)?)));
                }
                let out = c.run(api.call(call, None)).map_err(rpc_error)?;
                println!("{out}");
            }
        }
    }
    Ok(())
}
