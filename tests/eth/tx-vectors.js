// Prints the Ethereum transactions the decoder tests take as vectors
// (rusty-crypto/src/eth/tx_tests.rs), signed by an independent
// implementation: ethers v5's @ethersproject/transactions, which hardhat
// brings in (tests/eth/package-lock.json). Run: cd tests/eth && npm ci &&
// node tx-vectors.js
"use strict";
const { serialize, parse } = require("@ethersproject/transactions");
const { SigningKey } = require("@ethersproject/signing-key");
const { keccak256 } = require("@ethersproject/keccak256");
const key = new SigningKey("0x4646464646464646464646464646464646464646464646464646464646464646");
function signed(tx) {
  const digest = keccak256(serialize(tx));
  return serialize(tx, key.signDigest(digest));
}
const out = {
  type2: signed({ type: 2, chainId: 31337, nonce: 7, maxPriorityFeePerGas: 1500000000, maxFeePerGas: 30000000000, gasLimit: 100000,
    to: "0x3535353535353535353535353535353535353535", value: "1000000000000000000", data: "0xdeadbeef",
    accessList: [{ address: "0x1111111111111111111111111111111111111111", storageKeys: ["0x0000000000000000000000000000000000000000000000000000000000000001"] }] }),
  type1: signed({ type: 1, chainId: 1, nonce: 0, gasPrice: 20000000000, gasLimit: 21000,
    to: "0x3535353535353535353535353535353535353535", value: 5, data: "0x", accessList: [] }),
  create2: signed({ type: 2, chainId: 31337, nonce: 0, maxPriorityFeePerGas: 1, maxFeePerGas: 2, gasLimit: 500000, data: "0x6000" }),
};
for (const [k, v] of Object.entries(out)) { const p = parse(v); console.log(k, v, p.from, p.hash); }
