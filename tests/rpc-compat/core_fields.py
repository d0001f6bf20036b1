"""Field names and JSON types of results, as Bitcoin Core and Dash Core
document them. The reference for what a real client expects.

Bitcoin methods: Bitcoin Core 28.0's RPC help, as published at
https://bitcoincore.org/en/doc/28.0.0/rpc/<group>/<method>/ (the same text
as `bitcoin-cli help <method>`). Dash methods: the Dash Core RPC reference,
https://docs.dash.org/projects/core/en/stable/docs/api/remote-procedure-calls-<page>.html
Each table names its page. Types: Core's "(string)" with a "hex"
placeholder is HEX, "(numeric)" NUM, "(boolean)" BOOL; Dash's
"string (hex)" HEX, "number (int)" and "int" INT, "bool" BOOL.
"(…, optional)" and Dash's "Optional" are keys ending in "?".

EXCEPTIONS lists the fields a table requires that have no meaning on this
chain, each with the reason; a missing excepted field is not a failure (a
present one is still type-checked). docs/rpc.md documents the same list.
"""

from schema import BOOL, HEX, INT, NUM, NULL, STR, Arr, ByKey, Map, Obj

CORE = "https://bitcoincore.org/en/doc/28.0.0/rpc"
DASH = "https://docs.dash.org/projects/core/en/stable/docs/api"

# Where each table comes from.
SOURCES = {}
TABLES = {}


def table(name, source, shape):
    TABLES[name] = shape
    SOURCES[name] = source
    return shape


# ---- shared parts ----

# scriptPubKey in getrawtransaction / decoderawtransaction / getblock 2.
SCRIPT_PUB_KEY = Obj({
    "asm": STR,
    "desc": STR,
    "hex": HEX,
    "address?": STR,
    "type": STR,
})

# One input: "coinbase" (hex, only if coinbase transaction) or "txid",
# "vout", "scriptSig" (if not coinbase transaction), then "sequence".
VIN = ByKey(
    "coinbase",
    present=Obj({
        "coinbase": HEX,
        "txinwitness?": Arr(HEX),
        "sequence": NUM,
    }),
    absent=Obj({
        "txid": HEX,
        "vout": NUM,
        "scriptSig": Obj({"asm": STR, "hex": HEX}),
        "txinwitness?": Arr(HEX),
        "sequence": NUM,
    }),
)

VOUT = Obj({
    "value": NUM,
    "n": NUM,
    "scriptPubKey": SCRIPT_PUB_KEY,
})

# decoderawtransaction's result; getrawtransaction and getblock add to it.
DECODED_TX = {
    "txid": HEX,
    "hash": HEX,
    "size": NUM,
    "vsize": NUM,
    "weight": NUM,
    "version": NUM,
    "locktime": NUM,
    "vin": Arr(VIN),
    "vout": Arr(VOUT),
}

PREVOUT = Obj({
    "generated": BOOL,
    "height": NUM,
    "value": NUM,
    "scriptPubKey": SCRIPT_PUB_KEY,
})

# ---- blockchain ----

table("getblockchaininfo", f"{CORE}/blockchain/getblockchaininfo/", Obj({
    "chain": STR,
    "blocks": NUM,
    "headers": NUM,
    "bestblockhash": HEX,
    "difficulty": NUM,
    "time": NUM,
    "mediantime": NUM,
    "verificationprogress": NUM,
    "initialblockdownload": BOOL,
    "chainwork": HEX,
    "size_on_disk": NUM,
    "pruned": BOOL,
    "pruneheight?": NUM,
    "automatic_pruning?": BOOL,
    "prune_target_size?": NUM,
    # 28.0: an array of strings (a single string only with
    # -deprecatedrpc=warnings).
    "warnings": Arr(STR),
}))

table("getblockcount", f"{CORE}/blockchain/getblockcount/", NUM)
table("getbestblockhash", f"{CORE}/blockchain/getbestblockhash/", HEX)
table("getblockhash", f"{CORE}/blockchain/getblockhash/", HEX)

BLOCK_HEADER_FIELDS = {
    "hash": HEX,
    "confirmations": NUM,
    "height": NUM,
    "version": NUM,
    "versionHex": HEX,
    "merkleroot": HEX,
    "time": NUM,
    "mediantime": NUM,
    "nonce": NUM,
    "bits": HEX,
    "difficulty": NUM,
    "chainwork": HEX,
    "nTx": NUM,
    "previousblockhash?": HEX,
    "nextblockhash?": HEX,
}

table("getblockheader verbose=true", f"{CORE}/blockchain/getblockheader/",
      Obj(BLOCK_HEADER_FIELDS))
table("getblockheader verbose=false", f"{CORE}/blockchain/getblockheader/", HEX)

table("getblock verbosity=0", f"{CORE}/blockchain/getblock/", HEX)

BLOCK_FIELDS = dict(BLOCK_HEADER_FIELDS)
BLOCK_FIELDS.update({
    "size": NUM,
    "strippedsize": NUM,
    "weight": NUM,
})

table("getblock verbosity=1", f"{CORE}/blockchain/getblock/",
      Obj(dict(BLOCK_FIELDS, tx=Arr(HEX))))

# Verbosity 2: "Same output as verbosity = 1", and each of "tx" is "in the
# format of the getrawtransaction RPC" (its decoded fields and "hex"; the
# chain fields blockhash/confirmations/time belong to the block) with
# "fee" ("omitted if block undo data is not available"; Core never gives a
# coinbase one; compat.py requires it on the others).
table("getblock verbosity=2", f"{CORE}/blockchain/getblock/",
      Obj(dict(BLOCK_FIELDS, tx=Arr(Obj(dict(DECODED_TX, hex=HEX, **{"fee?": NUM}))))))

table("gettxout", f"{CORE}/blockchain/gettxout/", Obj({
    "bestblock": HEX,
    "confirmations": NUM,
    "value": NUM,
    "scriptPubKey": Obj({
        "asm": STR,
        "desc": STR,
        "hex": HEX,
        "type": STR,
        "address?": STR,
    }),
    "coinbase": BOOL,
}))

table("getmempoolinfo", f"{CORE}/blockchain/getmempoolinfo/", Obj({
    "loaded": BOOL,
    "size": NUM,
    "bytes": NUM,
    "usage": NUM,
    "total_fee": NUM,
    "maxmempool": NUM,
    "mempoolminfee": NUM,
    "minrelaytxfee": NUM,
    "incrementalrelayfee": NUM,
    "unbroadcastcount": NUM,
    "fullrbf": BOOL,
}))

table("getrawmempool verbose=false", f"{CORE}/blockchain/getrawmempool/", Arr(HEX))

table("getrawmempool verbose=true", f"{CORE}/blockchain/getrawmempool/", Map(
    Obj({
        "vsize": NUM,
        "weight": NUM,
        "time": NUM,
        "height": NUM,
        "descendantcount": NUM,
        "descendantsize": NUM,
        "ancestorcount": NUM,
        "ancestorsize": NUM,
        "wtxid": HEX,
        "fees": Obj({
            "base": NUM,
            "modified": NUM,
            "ancestor": NUM,
            "descendant": NUM,
        }),
        "depends": Arr(HEX),
        "spentby": Arr(HEX),
        "bip125-replaceable": BOOL,
        "unbroadcast": BOOL,
    }),
    key=r"[0-9a-f]{64}",
    key_doc="a txid",
))

# ---- raw transactions ----

table("decoderawtransaction", f"{CORE}/rawtransactions/decoderawtransaction/",
      Obj(DECODED_TX))

table("getrawtransaction verbosity=0", f"{CORE}/rawtransactions/getrawtransaction/", HEX)

RAW_TX_1 = dict(DECODED_TX)
RAW_TX_1.update({
    "in_active_chain?": BOOL,
    "blockhash?": HEX,
    "confirmations?": NUM,
    "blocktime?": NUM,
    "time?": NUM,
    "hex": HEX,
})
table("getrawtransaction verbosity=1", f"{CORE}/rawtransactions/getrawtransaction/",
      Obj(RAW_TX_1))

# Verbosity 2: verbosity 1 with "fee" and each input's "prevout" (both
# "omitted if block undo data is not available").
RAW_TX_2 = dict(RAW_TX_1)
RAW_TX_2.update({
    "fee?": NUM,
    "vin": Arr(ByKey(
        "coinbase",
        present=VIN.present,
        absent=Obj(dict(VIN.absent.fields, **{"prevout?": PREVOUT})),
    )),
})
table("getrawtransaction verbosity=2", f"{CORE}/rawtransactions/getrawtransaction/",
      Obj(RAW_TX_2))

# ---- mining ----

table("getblocktemplate", f"{CORE}/mining/getblocktemplate/", Obj({
    "version": NUM,
    "rules": Arr(STR),
    "vbavailable": Map(NUM),
    "capabilities": Arr(STR),
    "vbrequired": NUM,
    "previousblockhash": HEX,
    "transactions": Arr(Obj({
        "data": HEX,
        "txid": HEX,
        "hash": HEX,
        "depends": Arr(NUM),
        "fee": NUM,
        "sigops": NUM,
        "weight": NUM,
    })),
    "coinbaseaux": Map(HEX),
    "coinbasevalue": NUM,
    "longpollid": STR,
    "target": HEX,
    "mintime": NUM,
    "mutable": Arr(STR),
    "noncerange": HEX,
    "sigoplimit": NUM,
    "sizelimit": NUM,
    "weightlimit?": NUM,
    "curtime": NUM,
    "bits": HEX,
    "height": NUM,
    "signet_challenge?": HEX,
    "default_witness_commitment?": HEX,
}))

table("getmininginfo", f"{CORE}/mining/getmininginfo/", Obj({
    "blocks": NUM,
    "currentblockweight?": NUM,
    "currentblocktx?": NUM,
    "difficulty": NUM,
    "networkhashps": NUM,
    "pooledtx": NUM,
    "chain": STR,
    "warnings": Arr(STR),
}))

table("generatetoaddress", f"{CORE}/generating/generatetoaddress/", Arr(HEX))

# ---- wallet ----

table("getnewaddress", f"{CORE}/wallet/getnewaddress/", STR)
table("getbalance", f"{CORE}/wallet/getbalance/", NUM)
table("sendtoaddress", f"{CORE}/wallet/sendtoaddress/", HEX)

BALANCE = {
    "trusted": NUM,
    "untrusted_pending": NUM,
    "immature": NUM,
}
table("getbalances", f"{CORE}/wallet/getbalances/", Obj({
    "mine": Obj(dict(BALANCE, **{"used?": NUM})),
    "watchonly?": Obj(BALANCE),
    "lastprocessedblock": Obj({
        "hash": HEX,
        "height": NUM,
    }),
}))

table("listunspent", f"{CORE}/wallet/listunspent/", Arr(Obj({
    "txid": HEX,
    "vout": NUM,
    "address?": STR,
    "label?": STR,
    "scriptPubKey": HEX,
    "amount": NUM,
    "confirmations": NUM,
    "ancestorcount?": NUM,
    "ancestorsize?": NUM,
    "ancestorfees?": NUM,
    "redeemScript?": HEX,
    "witnessScript?": STR,
    "spendable": BOOL,
    "solvable": BOOL,
    "reused?": BOOL,
    "desc?": STR,
    "parent_descs": Arr(STR),
    "safe": BOOL,
})))

# "abandoned" is documented without "optional", but Core's ListTransactions
# adds it to "send" entries only; compat.py requires it there.
table("listtransactions", f"{CORE}/wallet/listtransactions/", Arr(Obj({
    "involvesWatchonly?": BOOL,
    "address?": STR,
    "category": STR,
    "amount": NUM,
    "label?": STR,
    "vout": NUM,
    "fee?": NUM,
    "confirmations": NUM,
    "generated?": BOOL,
    "trusted?": BOOL,
    "blockhash?": HEX,
    "blockheight?": NUM,
    "blockindex?": NUM,
    "blocktime?": NUM,
    "txid": HEX,
    "wtxid": HEX,
    "walletconflicts": Arr(HEX),
    "replaced_by_txid?": HEX,
    "replaces_txid?": HEX,
    "mempoolconflicts": Arr(HEX),
    "to?": STR,
    "time": NUM,
    "timereceived": NUM,
    "comment?": STR,
    "bip125-replaceable": STR,
    "parent_descs?": Arr(STR),
    "abandoned?": BOOL,
})))

# ---- util ----

table("validateaddress", f"{CORE}/util/validateaddress/", Obj({
    "isvalid": BOOL,
    "address?": STR,
    "scriptPubKey?": HEX,
    "isscript?": BOOL,
    "iswitness?": BOOL,
    "witness_version?": NUM,
    "witness_program?": HEX,
    "error?": STR,
    "error_locations?": Arr(NUM),
}))

# ---- network ----

table("getpeerinfo", f"{CORE}/network/getpeerinfo/", Arr(Obj({
    "id": NUM,
    "addr": STR,
    "addrbind?": STR,
    "addrlocal?": STR,
    "network": STR,
    "mapped_as?": NUM,
    "services": HEX,
    "servicesnames": Arr(STR),
    "relaytxes": BOOL,
    "lastsend": NUM,
    "lastrecv": NUM,
    "last_transaction": NUM,
    "last_block": NUM,
    "bytessent": NUM,
    "bytesrecv": NUM,
    "conntime": NUM,
    "timeoffset": NUM,
    "pingtime?": NUM,
    "minping?": NUM,
    "pingwait?": NUM,
    "version": NUM,
    "subver": STR,
    "inbound": BOOL,
    "bip152_hb_to": BOOL,
    "bip152_hb_from": BOOL,
    "startingheight": NUM,
    "presynced_headers": NUM,
    "synced_headers": NUM,
    "synced_blocks": NUM,
    "inflight": Arr(NUM),
    "addr_relay_enabled": BOOL,
    "addr_processed": NUM,
    "addr_rate_limited": NUM,
    "permissions": Arr(STR),
    "minfeefilter": NUM,
    "bytessent_per_msg": Map(NUM),
    "bytesrecv_per_msg": Map(NUM),
    "connection_type": STR,
    "transport_protocol_type": STR,
    "session_id": STR,
})))

table("getnetworkinfo", f"{CORE}/network/getnetworkinfo/", Obj({
    "version": NUM,
    "subversion": STR,
    "protocolversion": NUM,
    "localservices": HEX,
    "localservicesnames": Arr(STR),
    "localrelay": BOOL,
    "timeoffset": NUM,
    "connections": NUM,
    "connections_in": NUM,
    "connections_out": NUM,
    "networkactive": BOOL,
    "networks": Arr(Obj({
        "name": STR,
        "limited": BOOL,
        "reachable": BOOL,
        "proxy": STR,
        "proxy_randomize_credentials": BOOL,
    })),
    "relayfee": NUM,
    "incrementalfee": NUM,
    "localaddresses": Arr(Obj({
        "address": STR,
        "port": NUM,
        "score": NUM,
    })),
    "warnings": Arr(STR),
}))

table("getconnectioncount", f"{CORE}/network/getconnectioncount/", NUM)

table("listbanned", f"{CORE}/network/listbanned/", Arr(Obj({
    "address": STR,
    "ban_created": NUM,
    "banned_until": NUM,
    "ban_duration": NUM,
    "time_remaining": NUM,
})))

# ---- Dash: masternodes, quorums, ChainLocks ----

# "getbestchainlock": "Throws an error if there is no known ChainLock yet."
table("getbestchainlock",
      f"{DASH}/remote-procedure-calls-blockchain.html#getbestchainlock", Obj({
          "blockhash": HEX,
          "height": INT,
          "signature": HEX,
          "known_block": BOOL,
      }))

# "protx info" and each item of "protx list <type> true".
# state.operatorPayoutAddress is documented as Required, but Dash Core sets
# it only when an operator payout script exists (the documented examples
# have none and leave it out): optional here.
PROTX = Obj({
    "type": STR,
    "proTxHash": HEX,
    "collateralHash": HEX,
    "collateralIndex": INT,
    "collateralAddress": STR,
    "operatorReward": NUM,
    "state": Obj({
        "version": INT,
        "service": STR,
        "registeredHeight": INT,
        "lastPaidHeight": INT,
        "consecutivePayments": INT,
        "PoSePenalty": INT,
        "PoSeRevivedHeight": INT,
        "PoSeBanHeight": INT,
        "revocationReason": INT,
        "ownerAddress": STR,
        "votingAddress": STR,
        "payoutAddress": STR,
        "pubKeyOperator": HEX,
        "operatorPayoutAddress?": STR,
    }),
    "confirmations": INT,
    "wallet": Obj({
        "hasOwnerKey": BOOL,
        "hasOperatorKey": BOOL,
        "hasVotingKey": BOOL,
        "ownsCollateral": BOOL,
        "ownsPayeeScript": BOOL,
        "ownsOperatorRewardScript": BOOL,
    }),
    # The page types lastDSQ and mixingTxCount "string"; its examples (and
    # Dash Core) give numbers: NUM accepts those, a string would fail.
    "metaInfo": Obj({
        "lastDSQ": NUM,
        "mixingTxCount": NUM,
        "outboundAttemptCount": INT,
        "lastOutboundAttempt": INT,
        "lastOutboundAttemptElapsed": INT,
        "lastOutboundSuccess": INT,
        "lastOutboundSuccessElapsed": INT,
    }),
})

table("protx list", f"{DASH}/remote-procedure-calls-evo.html#protx-list", Arr(HEX))
table("protx list detailed=true", f"{DASH}/remote-procedure-calls-evo.html#protx-list",
      Arr(PROTX))
table("protx info", f"{DASH}/remote-procedure-calls-evo.html#protx-info", PROTX)

table("masternode count", f"{DASH}/remote-procedure-calls-dash.html#masternode-count", Obj({
    "total": INT,
    "enabled": INT,
    "detailed": Obj({
        "regular": Obj({"total": INT, "enabled": INT}),
        "evo": Obj({"total": INT, "enabled": INT}),
    }),
}))

table("masternode status", f"{DASH}/remote-procedure-calls-dash.html#masternode-status", Obj({
    "outpoint": STR,
    "service": STR,
    "proTxHash?": HEX,
    "type": STR,
    "collateralHash?": HEX,
    "collateralIndex?": INT,
    "dmnState?": Obj({
        "version": INT,
        "service": STR,
        "registeredHeight": INT,
        "lastPaidHeight": INT,
        "PoSePenalty": INT,
        "PoSeRevivedHeight": INT,
        "PoSeBanHeight": INT,
        "revocationReason": INT,
        "ownerAddress": STR,
        "votingAddress": STR,
        "platformNodeId?": STR,
        "platformP2PPort?": INT,
        "platformHTTPPort?": INT,
        "payoutAddress": STR,
        "pubKeyOperator": HEX,
        "operatorPayoutAddress?": STR,
    }),
    "state": STR,
    "status": STR,
}))

# "masternode list" "returns the same data as masternodelist", whose default
# mode is json. The page gives that mode's entries by example only (Dash
# Core 20.0.0): these are the example's keys, with the types its values
# have. Keys are collateral outpoints "<txid>-<index>".
table("masternode list", f"{DASH}/remote-procedure-calls-dash.html#masternodelist", Map(
    Obj({
        "proTxHash": HEX,
        "address": STR,
        "payee": STR,
        "status": STR,
        "type": STR,
        "pospenaltyscore": INT,
        "consecutivePayments": INT,
        "lastpaidtime": INT,
        "lastpaidblock": INT,
        "owneraddress": STR,
        "votingaddress": STR,
        "collateraladdress": STR,
        "pubkeyoperator": HEX,
    }),
    key=r"[0-9a-f]{64}-[0-9]+",
    key_doc="a collateral outpoint <txid>-<index>",
))

# Key: block height; value: the payee address(es), comma-separated.
table("masternode winners", f"{DASH}/remote-procedure-calls-dash.html#masternode-winners",
      Map(STR, key=r"[0-9]+", key_doc="a block height"))

# An object keyed by LLMQ type name ("llmq_50_60"), each an array of
# quorum hashes.
table("quorum list", f"{DASH}/remote-procedure-calls-evo.html#quorum-list",
      Map(Arr(HEX), key=r"llmq_[0-9a-z_]+", key_doc="an LLMQ type name (llmq_50_60)"))

# Dash Core 20+: the superblock schedule, thresholds and budget.
table("getgovernanceinfo",
      f"{DASH}/remote-procedure-calls-dash.html#getgovernanceinfo", Obj({
          "governanceminquorum": INT,
          "proposalfee": NUM,
          "superblockcycle": INT,
          "superblockmaturitywindow": INT,
          "lastsuperblock": INT,
          "nextsuperblock": INT,
          "fundingthreshold": INT,
          "governancebudget": NUM,
      }))

table("getsuperblockbudget",
      f"{DASH}/remote-procedure-calls-dash.html#getsuperblockbudget", NUM)

# A governance object as `gobject get` and `gobject list` give it.
GOBJECT = Obj({
    "Hash": HEX,
    "CollateralHash": HEX,
    "ObjectType": INT,
    "DataHex": HEX,
    "DataString": STR,
    "AbsoluteYesCount": INT,
    "YesCount": INT,
    "NoCount": INT,
    "AbstainCount": INT,
    "fBlockchainValidity": BOOL,
    "IsValidReason": STR,
    "fCachedValid": BOOL,
    "fCachedFunding": BOOL,
    "fCachedDelete": BOOL,
    "fCachedEndorsed": BOOL,
})

table("gobject get", f"{DASH}/remote-procedure-calls-dash.html#gobject-get", GOBJECT)
table("gobject list", f"{DASH}/remote-procedure-calls-dash.html#gobject-list",
      Map(GOBJECT, key=r"[0-9a-f]{64}", key_doc="an object hash"))
# Key: the voting masternode; value "hash:height:outcome:signal".
table("gobject getcurrentvotes", f"{DASH}/remote-procedure-calls-dash.html#gobject-getcurrentvotes",
      Map(STR, key=r"[0-9a-f]{64}", key_doc="a masternode"))

# ---- fields with no meaning on this chain ----

NO_DESCRIPTORS = ("output descriptors describe Bitcoin Script; FerrisScript has no "
                  "descriptor language")

NOT_COUNTED = ("not counted per connection yet: libp2p gives no per-connection byte or "
               "message counters (a counting transport is open work)")

EXCEPTIONS = {
    "getblock verbosity=2": {
        "tx[].vout[].scriptPubKey.desc": NO_DESCRIPTORS,
    },
    "getrawtransaction verbosity=1": {
        "vout[].scriptPubKey.desc": NO_DESCRIPTORS,
    },
    "getrawtransaction verbosity=2": {
        "vout[].scriptPubKey.desc": NO_DESCRIPTORS,
        "vin[].prevout.scriptPubKey.desc": NO_DESCRIPTORS,
    },
    "decoderawtransaction": {
        "vout[].scriptPubKey.desc": NO_DESCRIPTORS,
    },
    "gettxout": {
        "scriptPubKey.desc": NO_DESCRIPTORS,
    },
    "getblocktemplate": {
        "transactions[].sigops": "no signature-operation limit in consensus (blocks are "
                                 "limited by size only)",
        "sigoplimit": "no signature-operation limit in consensus",
    },
    "listunspent": {
        "[].parent_descs": NO_DESCRIPTORS,
    },
    "getpeerinfo": {
        "[].bip152_hb_to": "no BIP 152 compact blocks (blocks travel over libp2p request/response)",
        "[].bip152_hb_from": "no BIP 152 compact blocks",
        "[].addr_relay_enabled": "no addr relay: peers are found by Kademlia, mDNS and bootnodes",
        "[].addr_processed": "no addr relay",
        "[].addr_rate_limited": "no addr relay",
        "[].minfeefilter": "no BIP 133 feefilter message",
        "[].transport_protocol_type": "no BIP 324 v1/v2 transport: libp2p (Noise over TCP, QUIC)",
        "[].session_id": "no BIP 324 sessions",
        "[].lastsend": NOT_COUNTED,
        "[].lastrecv": NOT_COUNTED,
        "[].bytessent": NOT_COUNTED,
        "[].bytesrecv": NOT_COUNTED,
        "[].bytessent_per_msg": NOT_COUNTED,
        "[].bytesrecv_per_msg": NOT_COUNTED,
    },
    "protx info": {
        "metaInfo": "no CoinJoin (lastDSQ, mixingTxCount), and masternodes' outbound "
                    "connection attempts are not tracked",
    },
    "protx list detailed=true": {
        "[].metaInfo": "no CoinJoin (lastDSQ, mixingTxCount), and masternodes' outbound "
                       "connection attempts are not tracked",
    },
}

assert set(EXCEPTIONS) <= set(TABLES), set(EXCEPTIONS) - set(TABLES)
