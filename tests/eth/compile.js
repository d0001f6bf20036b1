// Compiles the bridge's Ethereum HTLC (rusty-node/src/bridge/eth/RustyHtlc.sol)
// with the pinned solc from npm and writes its ABI and bytecode beside it.
// `node compile.js --check` writes nothing and fails if the committed files
// differ from what the source compiles to; `--dir DIR` names the contract's
// directory when this script runs from a copy (the tests' npm cache).
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const dirFlag = process.argv.indexOf("--dir");
const dir =
  dirFlag >= 0
    ? process.argv[dirFlag + 1]
    : path.join(__dirname, "..", "..", "rusty-node", "src", "bridge", "eth");
const source = fs.readFileSync(path.join(dir, "RustyHtlc.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "RustyHtlc.sol": { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    // No metadata hash: the bytecode depends on the source alone, not on
    // the path or the comments' bytes in a metadata file.
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { RustyHtlc: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);
const contract = output.contracts["RustyHtlc.sol"].RustyHtlc;
const files = {
  "RustyHtlc.abi.json": JSON.stringify(contract.abi, null, 2) + "\n",
  "RustyHtlc.bin": contract.evm.bytecode.object + "\n",
  "RustyHtlc.runtime.bin": contract.evm.deployedBytecode.object + "\n",
};
const check = process.argv.includes("--check");
let stale = [];
for (const [name, text] of Object.entries(files)) {
  const file = path.join(dir, name);
  if (check) {
    const have = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    if (have !== text) stale.push(name);
  } else {
    fs.writeFileSync(file, text);
  }
}
if (stale.length > 0) {
  console.error(`stale: ${stale.join(", ")} (run: node tests/eth/compile.js with solc ${solc.version()})`);
  process.exit(1);
}
console.log(`${check ? "checked" : "wrote"} RustyHtlc with solc ${solc.version()}`);
