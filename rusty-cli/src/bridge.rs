//! `rusty-cli bridge`: atomic swaps through the node's typed `bridge_*`
//! RPC. `swap` and `accept` follow the swap on the terminal until it ends,
//! one line per state, with the deadlines that matter.

use std::time::Duration;

use anyhow::Result;
use rusty_node::{
    bridge::{service::SwapInfo, swap::State},
    rpc::{api::bridge::BridgeApiClient, remote::Remote},
};

use crate::{
    args::{BridgeCommand, GlobalArgs},
    client::{connect, print, rpc_error},
};

/// One line for a state a swap entered.
fn progress_line(s: &SwapInfo) -> String {
    let state = serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut line = format!("{state:<12} ({})", s.status);
    match s.state {
        State::Funded | State::PeerFunded | State::Funding => line.push_str(&format!(
            "  our HTLC refundable from {} height {}",
            s.own_network, s.refund_available_at
        )),
        State::SecretSeen | State::Redeeming => line.push_str(&format!(
            "  redeem before {} height {}",
            s.peer_network, s.must_redeem_before
        )),
        _ => {}
    }
    if let Some(e) = &s.last_error {
        line.push_str(&format!("  [{e}]"));
    }
    line
}

/// Prints every state change of swap `id` until it ends.
fn follow(c: &Remote, id: &str) -> Result<SwapInfo> {
    let api = c.api();
    let mut last: Option<(State, Option<String>)> = None;
    loop {
        let s = c.run(api.status(id.to_string())).map_err(rpc_error)?;
        let now = (s.state, s.last_error.clone());
        if last.as_ref() != Some(&now) {
            println!("{}", progress_line(&s));
            last = Some(now);
        }
        if s.state.is_terminal() {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn run(g: &GlobalArgs, cmd: &BridgeCommand) -> Result<()> {
    let c = connect(g)?;
    let api = c.api();
    let started = match cmd {
        BridgeCommand::Swap {
            peer,
            give,
            want,
            no_wait,
        } => {
            let s = c
                .run(api.swap(peer.clone(), give.clone(), want.clone()))
                .map_err(rpc_error)?;
            println!("swap {}: offered {} for {}", s.id, s.give, s.want);
            (!no_wait).then_some(s.id)
        }
        BridgeCommand::Accept { id, no_wait } => {
            let s = c.run(api.accept(id.clone())).map_err(rpc_error)?;
            println!(
                "swap {}: accepted, receiving {} for {}",
                s.id, s.give, s.want
            );
            (!no_wait).then_some(s.id)
        }
        BridgeCommand::Status { id } => {
            let s = c.run(api.status(id.clone())).map_err(rpc_error)?;
            print(&serde_json::to_value(s)?);
            None
        }
        BridgeCommand::List { state } => {
            let l = c.run(api.list(state.clone())).map_err(rpc_error)?;
            print(&serde_json::to_value(l)?);
            None
        }
        BridgeCommand::Refund { id } => {
            let s = c.run(api.refund(id.clone())).map_err(rpc_error)?;
            println!(
                "refund sent: {}",
                s.refund_txid.as_deref().unwrap_or("(unknown txid)")
            );
            None
        }
        BridgeCommand::Offers => {
            let o = c.run(api.offers()).map_err(rpc_error)?;
            print(&serde_json::to_value(o)?);
            None
        }
    };
    if let Some(id) = started {
        let end = follow(&c, &id)?;
        if end.state != State::Completed {
            anyhow::bail!(
                "swap {} ended {}: {}",
                end.id,
                end.status,
                end.last_error.unwrap_or_default()
            );
        }
    }
    Ok(())
}
