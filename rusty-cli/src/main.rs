//! `rusty-cli`: runs a Rusty Coin node and talks to one over JSON-RPC.
//!
//! Thin by design: parse arguments, build a config, call `rusty-core`.

// Printing results is this binary's job; libraries use `tracing`.
#![allow(clippy::print_stdout)]

mod args;
mod augy;
mod bridge;
mod chaos;
mod client;
mod contract;
mod gov;
mod interrupt;
mod localnet;
mod masternode;
mod node;
mod stream;
mod transcode;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Node(n) => node::run(&cli.global, n),
        Command::Bench(b) => node::bench(b),
        Command::Localnet(l) => localnet::run(&cli.global, l),
        Command::Chaos(c) => chaos::run(&cli.global, c),
        Command::Masternode(m) => masternode::run(&cli.global, m),
        Command::Gov(c) => gov::run(&cli.global, c),
        Command::Contract(c) => contract::run(&cli.global, c),
        Command::Augy(a) => augy::run(a),
        Command::Stream(s) => stream::run(&cli.global, s),
        Command::Bridge(b) => bridge::run(&cli.global, b),
        other => client::run(&cli.global, other),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line a person can act on; never a backtrace.
            // Causes the message already spells out are not repeated.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !msg.contains(&cause) {
                    msg.push_str(": ");
                    msg.push_str(&cause);
                }
            }
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
