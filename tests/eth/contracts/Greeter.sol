// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

/// The contract the client suites deploy: a constructor with an argument
/// and a value, a state change with an event, views.
contract Greeter {
    string public greeting;
    uint256 public count;

    event Greeted(address indexed by, string greeting, uint256 count);

    constructor(string memory initial) payable {
        greeting = initial;
    }

    function greet(string calldata next) external {
        greeting = next;
        count += 1;
        emit Greeted(msg.sender, next, count);
    }

    function held() external view returns (uint256) {
        return address(this).balance;
    }

    /// What BLOCKHASH and PREVRANDAO read: the chain's own hashes.
    function chain() external view returns (bytes32 parent, uint256 randao) {
        return (blockhash(block.number - 1), block.prevrandao);
    }

    function fail() external pure {
        revert("no greeting today");
    }
}
