// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The Ethereum side of a Rusty Coin atomic swap: ether locked to the
// SHA-256 hash of a 32-byte secret until a block height. Anyone may submit
// the secret (the ether goes to the recipient) or, from the lock height on,
// the refund (the ether goes back to the sender); neither needs the
// recipient's or the sender's key, as on our chains, so a watcher can
// finish a swap for a user who is offline.
//
// Compiled with solc from npm (tests/eth/compile.js); the ABI and the
// bytecode beside this file are its output, checked by the tests.
pragma solidity 0.8.28;

contract RustyHtlc {
    enum State {
        None,
        Open,
        Redeemed,
        Refunded
    }

    struct Lock {
        address sender;
        address recipient;
        uint256 amount;
        bytes32 secretHash;
        uint256 lockHeight;
        State state;
    }

    mapping(bytes32 => Lock) public locks;

    event Locked(
        bytes32 indexed id,
        address indexed sender,
        address indexed recipient,
        uint256 amount,
        bytes32 secretHash,
        uint256 lockHeight
    );
    event Redeemed(bytes32 indexed id, bytes32 secret);
    event Refunded(bytes32 indexed id);

    /// The id of a lock: who pays whom, against which hash, until when.
    /// Deterministic, so a sender that crashed after paying finds its lock.
    function lockId(
        address sender,
        address recipient,
        bytes32 secretHash,
        uint256 lockHeight
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(sender, recipient, secretHash, lockHeight));
    }

    function lock(
        address recipient,
        bytes32 secretHash,
        uint256 lockHeight
    ) external payable returns (bytes32 id) {
        require(msg.value > 0, "nothing to lock");
        require(recipient != address(0), "no recipient");
        require(lockHeight > block.number, "lock height already reached");
        id = lockId(msg.sender, recipient, secretHash, lockHeight);
        require(locks[id].state == State.None, "lock exists");
        locks[id] = Lock(msg.sender, recipient, msg.value, secretHash, lockHeight, State.Open);
        emit Locked(id, msg.sender, recipient, msg.value, secretHash, lockHeight);
    }

    /// Pays the recipient; the secret is in the event for the other chain.
    function redeem(bytes32 id, bytes32 secret) external {
        Lock storage l = locks[id];
        require(l.state == State.Open, "lock not open");
        require(sha256(abi.encodePacked(secret)) == l.secretHash, "wrong secret");
        l.state = State.Redeemed;
        emit Redeemed(id, secret);
        (bool ok, ) = l.recipient.call{value: l.amount}("");
        require(ok, "payment failed");
    }

    /// Pays the sender back, from the lock height on.
    function refund(bytes32 id) external {
        Lock storage l = locks[id];
        require(l.state == State.Open, "lock not open");
        require(block.number >= l.lockHeight, "lock height not reached");
        l.state = State.Refunded;
        emit Refunded(id);
        (bool ok, ) = l.sender.call{value: l.amount}("");
        require(ok, "payment failed");
    }
}
