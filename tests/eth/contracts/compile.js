// Compiles contracts/<Name>.sol with the pinned solc (its default EVM
// target, Cancun: PUSH0 and MCOPY appear) and returns { abi, bytecode }.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

function compile(name) {
  const file = `${name}.sol`;
  const input = {
    language: 'Solidity',
    sources: { [file]: { content: fs.readFileSync(path.join(__dirname, file), 'utf8') } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === 'error');
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
  const c = out.contracts[file][name];
  return { abi: c.abi, bytecode: '0x' + c.evm.bytecode.object };
}

module.exports = { compile };
