// Deploys and uses Greeter through viem, unmodified: deployContract,
// waitForTransactionReceipt, readContract, writeContract, getContractEvents.
'use strict';
const assert = require('assert');
const viem = require('viem');
const { generatePrivateKey, privateKeyToAccount } = require('viem/accounts');
const { compile } = require('./compile');

async function main() {
  const { abi, bytecode } = compile('Greeter');
  const chain = viem.defineChain({
    id: Number(process.env.CHAIN_ID),
    name: 'Rusty Coin dev',
    nativeCurrency: { name: 'Rusty Coin', symbol: 'RSC', decimals: 18 },
    rpcUrls: { default: { http: [process.env.RPC_URL] } },
  });
  const transport = viem.http(process.env.RPC_URL);
  const pub = viem.createPublicClient({ chain, transport, pollingInterval: 250 });
  const account = privateKeyToAccount(process.env.PRIVATE_KEY);
  const wallet = viem.createWalletClient({ account, chain, transport });
  assert.equal(await pub.getChainId(), chain.id);

  const hash = await wallet.deployContract({ abi, bytecode, args: ['from viem'] });
  const receipt = await pub.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, 'success');
  const address = receipt.contractAddress;
  assert(address, 'a contract address');
  assert.equal(await pub.readContract({ address, abi, functionName: 'greeting' }), 'from viem');

  const { request } = await pub.simulateContract({ account, address, abi, functionName: 'greet', args: ['viem again'] });
  const tx = await wallet.writeContract(request);
  const r2 = await pub.waitForTransactionReceipt({ hash: tx });
  assert.equal(r2.status, 'success');
  const events = await pub.getContractEvents({ address, abi, eventName: 'Greeted', fromBlock: 0n });
  assert.equal(events.length, 1);
  assert.equal(events[0].args.greeting, 'viem again');
  assert.equal(events[0].args.by, account.address);
  const block = await pub.getBlock({ blockNumber: r2.blockNumber });
  assert(block.transactions.includes(tx));

  // An account holding little sends through viem, whose eth_estimateGas
  // carries its fee cap: the estimate must stay within what the balance
  // can pay at that cap (as geth bounds it), not fail at the block's limit.
  const fresh = privateKeyToAccount(generatePrivateKey());
  const fund = await wallet.sendTransaction({ to: fresh.address, value: viem.parseEther('0.01') });
  assert.equal((await pub.waitForTransactionReceipt({ hash: fund })).status, 'success');
  const small = viem.createWalletClient({ account: fresh, chain, transport });
  const back = await small.sendTransaction({ to: account.address, value: 1n });
  assert.equal((await pub.waitForTransactionReceipt({ hash: back })).status, 'success');
  console.log(JSON.stringify({ client: 'viem', contract: address, block: Number(r2.blockNumber), gasUsed: r2.gasUsed.toString() }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
