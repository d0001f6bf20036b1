# Rusty Coin — the two commands a new machine needs: `make run` and `make test`.

# One target directory outside the clone, so repeated runs build incrementally.
CARGO_TARGET_DIR ?= $(HOME)/.cache/rusty-coin/target
export CARGO_TARGET_DIR

DATADIR ?= $(HOME)/.rusty
ARGS ?=

.PHONY: deps build run test chaos chaos-short lint bench bench-connect bench-network bench-bls bench-chainlock bench-media bench-abr bench-select bench-superblock bench-erc20 bench-swap fmt

## Install what a fresh Debian machine with a Rust toolchain lacks.
deps:
	@scripts/install-deps.sh

build: deps
	cargo build --bin rusty-cli

## Build and start a dev node: RPC on 127.0.0.1:28432, mining, wallet.
run: deps
	cargo run --bin rusty-cli -- --dev --datadir $(DATADIR) node $(ARGS)

## The whole test suite, then a short chaos soak (fixed seed, about three
## minutes with set-up): real node processes under faults, invariants
## checked over RPC (docs/reliability.md).
test: deps
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace; \
	fi
	$(MAKE) chaos-short

## The short soak alone.
chaos-short: deps
	cargo run --bin rusty-cli -- chaos --minutes 2 --seed 1

## A 30-minute soak with a random seed (the report is printed and kept).
chaos: deps
	cargo run --bin rusty-cli -- chaos --minutes 30 --keep $(ARGS)

lint: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## Benchmarks (dev profile with optimised dependencies): all of them.
bench: bench-connect bench-network bench-bls bench-chainlock bench-media bench-abr bench-select bench-superblock bench-erc20 bench-swap

## Block connection into RocksDB beside raw Ed25519 batch verification.
bench-connect: deps
	cargo run --bin rusty-cli -- bench connect --blocks 20 --txs 1000

## Initial sync from 1 and 3 peers and tx gossip latency across 5 nodes on
## loopback, beside raw loopback TCP (about a minute).
bench-network: deps
	cargo run --bin rusty-cli -- bench network

## BLS threshold recovery and aggregate verification beside raw blst.
bench-bls: deps
	cargo run --bin rusty-cli -- bench bls

# ChainLock latency on a 1-miner, 6-masternode dev localnet.
bench-chainlock: deps
	cargo run --bin rusty-cli -- bench chainlock

## Media: transfer throughput beside raw loopback TCP and aria2c, three providers,
## blocks beside a transfer; live upload share and latency with 8 viewers.
bench-media: deps
	cargo run --bin rusty-cli -- bench media

## Adaptive-bitrate rules over seeded traces beside the offline optimum.
bench-abr:
	cargo run --bin rusty-cli -- bench abr

## Provider policies (classic, learned) beside an oracle, simulated.
bench-select:
	cargo run --bin rusty-cli -- bench select --node-trials 5

## A governance superblock (5,000 masternodes, 200 proposals, a million
## votes) and its snapshot beside ordinary blocks of the same size.
bench-superblock: deps
	cargo run --bin rusty-cli -- bench superblock

## ERC-20 transfers connected by the chain beside raw revm on an in-memory
## database, and the state root per block.
bench-erc20: deps
	cargo run --bin rusty-cli -- bench erc20

## Atomic swaps between two dev chains: 1 and 6 confirmations, and a ChainLock.
bench-swap: deps
	cargo run --bin rusty-cli -- bench swap
