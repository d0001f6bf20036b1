// Writes rusty-bench/src/erc20/Token.bin (Token.sol's creation bytecode,
// hex, as the pinned solc compiles it) for `rusty-cli bench erc20`; with
// --check, fails if the committed file differs.
'use strict';
const fs = require('fs');
const path = require('path');
const { compile } = require('./compile');

const out = path.join(__dirname, '..', '..', '..', 'rusty-bench', 'src', 'erc20', 'Token.bin');
const hex = compile('Token').bytecode.slice(2) + '\n';
if (process.argv.includes('--check')) {
  if (fs.readFileSync(out, 'utf8') !== hex) {
    console.error(`${out} differs from Token.sol compiled by the pinned solc: run node ${__filename}`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(out, hex);
}
