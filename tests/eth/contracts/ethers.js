// Deploys and uses Greeter through ethers v6, unmodified, against the node
// at RPC_URL with the funded key PRIVATE_KEY. Prints one JSON line of
// what it saw; exits non-zero on any failed expectation.
'use strict';
const assert = require('assert');
const { ethers } = require('ethers');
const { compile } = require('./compile');

async function main() {
  const { abi, bytecode } = compile('Greeter');
  // ethers v6 answers identical requests from a 250 ms cache, also after
  // a broadcast (ethers-io/ethers.js#5165): where a block follows within
  // that window, as on this test's dev node, the next transaction reuses
  // the pending nonce from before and fails with NONCE_EXPIRED. A documented
  // provider option turns it off (ethers' own advice for hardhat, #4549).
  const provider = new ethers.JsonRpcProvider(process.env.RPC_URL, undefined, {
    cacheTimeout: -1,
  });
  provider.pollingInterval = 250;
  const network = await provider.getNetwork();
  assert.equal(network.chainId, BigInt(process.env.CHAIN_ID));
  const wallet = new ethers.Wallet(process.env.PRIVATE_KEY, provider);
  const before = await provider.getBalance(wallet.address);
  assert(before > 0n, 'the key is funded');

  const factory = new ethers.ContractFactory(abi, bytecode, wallet);
  const greeter = await factory.deploy('hello', { value: ethers.parseEther('0.5') });
  await greeter.waitForDeployment();
  const address = await greeter.getAddress();
  const deployTx = greeter.deploymentTransaction();
  // Ethereum's CREATE address: sender and nonce.
  assert.equal(address, ethers.getCreateAddress({ from: wallet.address, nonce: deployTx.nonce }));
  assert.equal(await greeter.greeting(), 'hello');
  assert.equal(await greeter.held(), ethers.parseEther('0.5'));
  assert.notEqual(await provider.getCode(address), '0x');

  // Events and pending transactions as they happen: ethers installs
  // filters (eth_newFilter, eth_newPendingTransactionFilter) and polls them
  // (eth_getFilterChanges) on each new block. What it sends is watched
  // through its debug events, so a fallback to eth_getLogs would show.
  const sent = [];
  provider.on('debug', (info) => {
    if (info.action === 'sendRpcPayload') sent.push(...[].concat(info.payload).map((p) => p.method));
  });
  const within = (ms, what, promise) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing in ${ms} ms`)), ms)),
  ]);
  const heard = new Promise((resolve) => {
    greeter.once('Greeted', (by, greeting, count, payload) => resolve({ by, greeting, count, payload }));
  });
  const pendingHashes = [];
  await provider.on('pending', (hash) => pendingHashes.push(hash));
  const polls = () => sent.filter((m) => m === 'eth_getFilterChanges').length;
  // Both filters installed and polled once: what follows is news to them.
  await within(20000, 'the filters\' first polls', (async () => {
    while (polls() < 2) await new Promise((r) => setTimeout(r, 50));
  })());

  const tx = await greeter.greet('hi there');
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  const event = await within(20000, 'the Greeted listener', heard);
  assert.equal(event.by, wallet.address);
  assert.equal(event.greeting, 'hi there');
  assert.equal(event.count, 1n);
  assert.equal(event.payload.log.transactionHash, tx.hash);
  await within(20000, 'the pending listener', (async () => {
    while (!pendingHashes.includes(tx.hash)) await new Promise((r) => setTimeout(r, 50));
  })());
  await provider.off('pending');
  for (const m of ['eth_newFilter', 'eth_newPendingTransactionFilter', 'eth_getFilterChanges']) {
    assert(sent.includes(m), `ethers sent ${m}`);
  }
  assert(!sent.includes('eth_getLogs'), 'no fallback to polling eth_getLogs');
  assert.equal(await greeter.greeting(), 'hi there');
  assert.equal(await greeter.count(), 1n);
  const parsed = receipt.logs.map((l) => greeter.interface.parseLog(l)).filter(Boolean);
  assert.equal(parsed.length, 1);
  assert.equal(parsed[0].args.by, wallet.address);

  // Events through eth_getLogs.
  const events = await greeter.queryFilter(greeter.filters.Greeted(wallet.address), 0, 'latest');
  assert.equal(events.length, 1);
  assert.equal(events[0].args.greeting, 'hi there');
  assert.equal(events[0].transactionHash, tx.hash);
  const none = await greeter.queryFilter(greeter.filters.Greeted(ethers.ZeroAddress), 0, 'latest');
  assert.equal(none.length, 0);

  // A revert comes back with its reason; nothing is sent.
  await assert.rejects(greeter.fail(), (e) => e.code === 'CALL_EXCEPTION' && e.reason === 'no greeting today');
  // Ethereum's errors, as ethers classifies them.
  await assert.rejects(
    wallet.sendTransaction({ to: ethers.ZeroAddress, value: before * 2n }),
    (e) => e.code === 'INSUFFICIENT_FUNDS',
  );

  const mined = await provider.getTransaction(tx.hash);
  assert.equal(mined.from, wallet.address);
  assert.equal(mined.blockNumber, receipt.blockNumber);
  const block = await provider.getBlock(receipt.blockNumber);
  assert(block.transactions.includes(tx.hash));
  // BLOCKHASH(n - 1) and PREVRANDAO, run at block n, read the parent's
  // hash, which the block reports as its prevRandao.
  const [parent, randao] = await greeter.chain({ blockTag: receipt.blockNumber });
  assert.equal(parent, block.parentHash);
  assert.equal(ethers.toBeHex(randao, 32), block.parentHash);
  assert.equal(block.prevRandao, block.parentHash);
  const after = await provider.getBalance(wallet.address);
  const fees = before - after - ethers.parseEther('0.5');
  assert(fees > 0n, 'gas was paid');
  // The same over WebSocket, on the same port: ethers' WebSocketProvider
  // subscribes (eth_subscribe newHeads and logs). A subscription starts
  // asynchronously, so greetings are sent until one is heard.
  const ws = new ethers.WebSocketProvider(process.env.RPC_URL.replace(/^http/, 'ws'));
  const heads = [];
  await ws.on('block', (n) => heads.push(n));
  const overWs = [];
  await new ethers.Contract(address, abi, ws).on('Greeted', (by, greeting, count, payload) => {
    overWs.push({ by, greeting, hash: payload.log.transactionHash });
  });
  const pendingOverWs = [];
  await ws.on('pending', (hash) => pendingOverWs.push(hash));
  const greetedOverWs = [];
  const heardBoth = () => overWs.length > 0 && pendingOverWs.some((h) => greetedOverWs.includes(h));
  for (let i = 0; i < 5 && !heardBoth(); i++) {
    const t = await greeter.greet(`over websocket ${i}`);
    greetedOverWs.push(t.hash);
    await t.wait();
    for (let waited = 0; waited < 3000 && !heardBoth(); waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert(overWs.length > 0, 'a Greeted event came over the WebSocket');
  assert(heardBoth(), 'a pending transaction came over the WebSocket');
  assert(greetedOverWs.includes(overWs[0].hash), 'the event of a greeting sent');
  assert.equal(overWs[0].by, wallet.address);
  assert(heads.length > 0, 'new heads came over the WebSocket');
  await ws.destroy();

  // Stops the provider's polling, so that the process can exit.
  provider.destroy();
  console.log(JSON.stringify({
    client: 'ethers', version: ethers.version, contract: address, block: receipt.blockNumber,
    gasUsed: receipt.gasUsed.toString(), fees: fees.toString(),
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
