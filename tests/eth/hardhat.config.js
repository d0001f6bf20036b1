// The local Ethereum development node the bridge's tests start
// (`npx hardhat node --config tests/eth/hardhat.config.js --port N`).
// Blocks come every second as well as on each transaction, so lock
// heights pass on their own as on a real chain.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      mining: { auto: true, interval: 1000 },
    },
  },
};
