"""web3.py, unmodified, against the node at RPC_URL: an EIP-1559 (type-2)
value transfer and a type-2 call of the Greeter at CONTRACT, signed with
PRIVATE_KEY, its event read through an event filter and its block through a
block filter. Prints one JSON line; any failed expectation exits non-zero."""

import json
import os
import sys

from eth_account import Account
from web3 import Web3

GREETER_ABI = [
    {"type": "function", "name": "greet", "stateMutability": "nonpayable",
     "inputs": [{"name": "next", "type": "string"}], "outputs": []},
    {"type": "function", "name": "greeting", "stateMutability": "view",
     "inputs": [], "outputs": [{"name": "", "type": "string"}]},
    {"type": "event", "name": "Greeted", "anonymous": False,
     "inputs": [{"name": "by", "type": "address", "indexed": True},
                {"name": "greeting", "type": "string", "indexed": False},
                {"name": "count", "type": "uint256", "indexed": False}]},
]


def main():
    w3 = Web3(Web3.HTTPProvider(os.environ["RPC_URL"]))
    assert w3.is_connected()
    chain_id = w3.eth.chain_id
    assert chain_id == int(os.environ["CHAIN_ID"]), chain_id
    me = Account.from_key(os.environ["PRIVATE_KEY"])
    to = Account.create().address
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": w3.eth.get_transaction_count(me.address, "pending"),
        "to": to,
        "value": Web3.to_wei(1, "ether"),
        "gas": 21000,
        "maxFeePerGas": base_fee * 2,
        "maxPriorityFeePerGas": w3.eth.max_priority_fee,
    }
    signed = me.sign_transaction(tx)
    sent = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(sent, timeout=60, poll_latency=0.25)
    assert receipt["status"] == 1
    assert receipt["type"] == 2
    assert w3.eth.get_balance(to) == Web3.to_wei(1, "ether")
    mined = w3.eth.get_transaction(sent)
    assert mined["type"] == 2 and mined["from"] == me.address

    greeter = w3.eth.contract(address=Web3.to_checksum_address(os.environ["CONTRACT"]), abi=GREETER_ABI)
    # Filters (eth_newFilter, eth_newBlockFilter), installed before the
    # call and polled after it.
    start = w3.eth.block_number
    greeted = greeter.events.Greeted.create_filter(from_block=start)
    blocks = w3.eth.filter("latest")
    call = greeter.functions.greet("from web3.py").build_transaction({
        "type": 2,
        "chainId": chain_id,
        "from": me.address,
        "nonce": w3.eth.get_transaction_count(me.address, "pending"),
        "maxFeePerGas": base_fee * 2,
        "maxPriorityFeePerGas": 0,
    })
    signed = me.sign_transaction(call)
    sent2 = w3.eth.send_raw_transaction(signed.raw_transaction)
    r2 = w3.eth.wait_for_transaction_receipt(sent2, timeout=60, poll_latency=0.25)
    assert r2["status"] == 1 and r2["type"] == 2
    assert greeter.functions.greeting().call() == "from web3.py"
    new = greeted.get_new_entries()
    assert [e["args"]["greeting"] for e in new] == ["from web3.py"], new
    assert new[0]["transactionHash"] == sent2 and new[0]["args"]["by"] == me.address
    assert greeted.get_new_entries() == [], "a poll reports each log once"
    # eth_getFilterLogs: the filter's whole range again.
    assert [e["transactionHash"] for e in greeted.get_all_entries()] == [sent2]
    assert r2["blockHash"] in blocks.get_new_entries()
    assert w3.eth.uninstall_filter(greeted.filter_id)
    assert not w3.eth.uninstall_filter(greeted.filter_id)

    # A stale nonce is refused with Ethereum's error.
    try:
        w3.eth.send_raw_transaction(signed.raw_transaction)
        raise AssertionError("a replayed transaction was accepted")
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 - web3 7 raises Web3RPCError
        assert "nonce too low" in str(e) or "already known" in str(e), e
    print(json.dumps({"client": "web3.py", "block": r2["blockNumber"], "gasUsed": r2["gasUsed"]}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report and fail
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        raise
