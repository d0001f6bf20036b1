//! Client subcommands: JSON-RPC calls to a running node.

use anyhow::{bail, Result};
use rusty_node::rpc::{
    api::{mining::MiningApiClient, wallet::WalletApiClient},
    client::ClientError,
    remote::{Credentials, Remote},
};
use serde_json::Value;

use crate::args::{Command, GlobalArgs, MineCommand, WalletCommand};

/// Connects as bitcoin-cli does: explicit user/password, else the cookie in
/// the datadir. The connection is jsonrpsee's HTTP client behind
/// [`Remote`].
pub(crate) fn connect(g: &GlobalArgs) -> Result<Remote> {
    let network = g.network();
    let url = g
        .rpc_url
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", network.params().rpc_port));
    let credentials = match (&g.rpc_user, &g.rpc_password) {
        (Some(u), Some(p)) => Credentials::UserPassword(u.clone(), p.clone()),
        (Some(_), None) | (None, Some(_)) => bail!("--rpc-user and --rpc-password go together"),
        (None, None) => Credentials::Cookie(g.network_dir().join(".cookie")),
    };
    Ok(Remote::connect(&url, credentials)?)
}

/// An RPC error as bitcoin-cli prints it.
pub(crate) fn rpc_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Rpc { code, message } => anyhow::anyhow!("{message} (RPC error {code})"),
        other => anyhow::Error::new(other),
    }
}

/// Prints a result as bitcoin-cli does: strings bare, the rest as JSON.
pub(crate) fn print(v: &Value) {
    match v {
        Value::String(s) => println!("{s}"),
        Value::Null => {}
        other => println!(
            "{}",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    }
}

/// A command-line parameter: JSON if it parses, else a string. A run of
/// more than 18 digits stays a string: no number the RPC takes is that
/// long, and hex (a hash or HTLC secret of digits only) would lose its
/// digits as a JSON number.
fn param(s: &str) -> Value {
    if s.len() > 18 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Value::String(s.to_string());
    }
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Prints a typed result as bitcoin-cli does.
fn print_typed<T: serde::Serialize>(result: Result<T, ClientError>) -> Result<()> {
    let value = serde_json::to_value(result.map_err(rpc_error)?)?;
    print(&value);
    Ok(())
}

pub fn run(g: &GlobalArgs, cmd: &Command) -> Result<()> {
    let c = connect(g)?;
    match cmd {
        Command::Rpc { method, params } => {
            let params: Vec<Value> = params.iter().map(|p| param(p)).collect();
            print(&c.call(method, params).map_err(rpc_error)?);
        }
        Command::Wallet(w) => match w {
            WalletCommand::Address => print_typed(c.run(c.api().get_new_address()))?,
            WalletCommand::Balance => print_typed(c.run(c.api().get_balances()))?,
            WalletCommand::Send { address, amount } => print_typed(
                c.run(
                    c.api()
                        .send_to_address(address.clone(), Value::from(amount.clone())),
                ),
            )?,
            WalletCommand::List { count } => print_typed(c.run(c.api().list_transactions(
                Some("*".to_owned()),
                Some(*count),
                None,
            )))?,
        },
        Command::Mine(MineCommand::Generate { n, address }) => {
            let address = match address {
                Some(a) => a.clone(),
                None => c.run(c.api().get_new_address()).map_err(rpc_error)?,
            };
            print_typed(c.run(c.api().generate_to_address(*n, address, None)))?;
        }
        Command::Node(_)
        | Command::Bench(_)
        | Command::Localnet(_)
        | Command::Chaos(_)
        | Command::Masternode(_)
        | Command::Gov(_)
        | Command::Contract(_)
        | Command::Augy(_)
        | Command::Stream(_)
        | Command::Bridge(_) => {
            unreachable!("handled in main")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_json_except_long_digit_runs() {
        assert_eq!(param("40"), Value::from(40));
        assert_eq!(param("true"), Value::Bool(true));
        assert_eq!(param("drsc1xyz"), Value::from("drsc1xyz"));
        let hex_of_digits = "42".repeat(32);
        assert_eq!(param(&hex_of_digits), Value::from(hex_of_digits.as_str()));
    }
}
