#!/usr/bin/env python3
"""Do real Bitcoin and Dash RPC clients work against a Rusty Coin node?

Drives a running dev node with two client libraries from PyPI, unmodified
(pinned in requirements.txt):

- python-bitcoinrpc's bitcoinrpc.authproxy.AuthServiceProxy, the proxy
  Bitcoin Core's own functional tests grew from;
- python-bitcoinlib's bitcoin.rpc.RawProxy.

The README flow (address, mine to maturity, balance, send, the payment in
the mempool, mine, confirmed) goes through RawProxy; every read method is
called through both libraries, and its result checked field by field
against the tables in core_fields.py (Bitcoin Core 28.0's and Dash Core's
RPC documentation). Errors and batches are checked through both libraries
and byte for byte on the wire (wire.py): codes, messages, HTTP status
codes and headers as Bitcoin Core 28 answers them.

The node must be a dev node (`rusty-cli --dev … node`) that does not mine
on its own (`--no-mine`), runs as a masternode (`--masternode
--operator-key FILE`, the key from `rusty-cli masternode genkey --out
FILE`) and has a peer (`--min-peers`, default 1):

    python3 compat.py --url http://127.0.0.1:28432 --cookie ~/.rusty/dev/.cookie \\
        --operator-pubkey <public key printed by genkey>

It mines blocks, sends coins, registers a masternode and bans 192.0.2.1
for a moment: use a throwaway datadir. Prints one line per check, then
every mismatch (method, field, expected, got) and a summary; exits 1 when
any check failed.
"""

import argparse
import decimal
import json
import os
import signal
import sys
import time
import traceback

try:
    from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException
    from bitcoin.rpc import JSONRPCError, RawProxy
except ImportError as e:
    sys.exit(
        f"error: {e}. Install the pinned client libraries first: "
        f"python3 -m pip install -r {os.path.join(os.path.dirname(__file__), 'requirements.txt')}"
    )

import core_fields
import wire
from schema import Mismatch, check, json_type

# rusty-shared-types' DEV params.
DEV_COINBASE_MATURITY = 10
DEV_COLLATERAL = decimal.Decimal(10)
# Sent as the float 12.5 (exact in binary): RawProxy's json.dumps takes no
# Decimal, as python-bitcoinlib users know.
PAYMENT = decimal.Decimal("12.5")
BANNED = "192.0.2.1"


class Blocked(Exception):
    """A check needs what an earlier, failed check should have made."""


class Deadline(BaseException):
    pass


class Suite:
    def __init__(self, args, user, password):
        self.args = args
        host = args.url.split("://", 1)[-1].rstrip("/")
        self.url_with_auth = f"http://{user}:{password}@{host}/"
        self.raw = RawProxy(service_url=self.url_with_auth, timeout=args.timeout)
        self.wire_args = (args.url, user, password, args.timeout)
        self.wire = wire.Wire(*self.wire_args)
        self.ctx = {}
        self.results = []  # (name, ok, problems)
        self.excepted = {}  # (table, path) -> reason, for fields found missing
        self.current = None

    # ---- running ----

    def run(self, name, fn):
        self.current = []
        try:
            fn(self)
        except Blocked as e:
            self.fail(name, "", "to run", f"blocked: {e}")
        except Deadline:
            raise
        except Exception as e:  # noqa: BLE001 - every error is a finding
            self.fail(name, "", "no exception", f"{type(e).__name__}: {e}")
            if self.args.verbose:
                traceback.print_exc(file=sys.stdout)
        problems = self.current
        self.current = None
        ok = not problems
        self.results.append((name, ok, problems))
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
        for p in problems:
            print(f"      {p.line()}")
        sys.stdout.flush()

    def need(self, key):
        if key not in self.ctx:
            raise Blocked(f"no {key} (an earlier check failed)")
        return self.ctx[key]

    # ---- findings ----

    def fail(self, table, path, expected, got):
        self.current.append(Mismatch(table, path, expected, got))

    def shape(self, table, value):
        """Checks `value` against the table; returns it."""
        for m in check(value, core_fields.TABLES[table], table,
                       exceptions=core_fields.EXCEPTIONS.get(table)):
            if m.excepted:
                self.excepted[(m.table, m.path)] = m.excepted
            else:
                self.current.append(m)
        return value

    def equal(self, table, path, expected, got):
        if expected != got:
            self.fail(table, path, repr(expected), repr(got))

    def field(self, table, path, expected, obj, key):
        """`obj[key] == expected`, when `obj` has `key`: a missing field is
        the table's finding (shape), not this one's."""
        if isinstance(obj, dict) and key in obj:
            self.equal(table, path, expected, obj[key])

    def require(self, table, path, cond, expected, got):
        if not cond:
            self.fail(table, path, expected, got)

    # ---- calls ----

    def ap(self):
        """A new AuthServiceProxy. One per call: when python-bitcoinrpc
        rejects a reply (say, for its Content-Type) it leaves the reply
        unread and its connection unusable, and every later call through
        that proxy would fail for that one reason. authproxy_call checks
        several calls through one proxy."""
        return AuthServiceProxy(self.url_with_auth, timeout=self.args.timeout)

    def call(self, method, *params):
        """A call through python-bitcoinlib's RawProxy."""
        return getattr(self.raw, method)(*params)

    def read(self, table, method, *params):
        """A read-only call through both libraries: RawProxy's result is
        checked against `table` and returned; AuthServiceProxy must answer
        too, with a value of the same JSON type."""
        result = self.call(method, *params)
        self.shape(table, result)
        try:
            other = getattr(self.ap(), method)(*params)
        except JSONRPCException as e:
            self.fail(table, "", "an answer through AuthServiceProxy",
                      f"JSONRPCException {e.error}")
        else:
            if json_type(other) != json_type(result):
                self.fail(table, "", f"AuthServiceProxy: {json_type(result)}", json_type(other))
        return result

    def error_of(self, proxy_name, fn):
        """The error dict a call raised, or None when it returned."""
        try:
            fn()
        except JSONRPCException as e:
            return {"library": proxy_name, **e.error}
        except JSONRPCError as e:
            return {"library": proxy_name, **e.error}
        return None


# ---- HTTP ----

def http_content_type(s):
    r = s.wire.post(wire.legacy("getblockcount"))
    s.equal("HTTP", "status", 200, r.status)
    s.equal("HTTP", "Content-Type (AuthServiceProxy compares it)", "application/json",
            r.header("content-type"))
    body = r.json()
    s.equal("HTTP", "legacy reply members", ["error", "id", "result"], sorted(body))
    s.equal("HTTP", "error", None, body.get("error"))


def http_unauthorized(s):
    for what, auth, headers in (("no credentials", False, None),
                                ("wrong password", False, {"Authorization": "Basic eDp5"})):
        w = wire.Wire(*s.wire_args)
        try:
            r = w.post(wire.legacy("getblockcount"), auth=auth, headers=headers)
        finally:
            w.close()
        s.equal(f"HTTP 401 ({what})", "status", 401, r.status)
        s.equal(f"HTTP 401 ({what})", "WWW-Authenticate", 'Basic realm="jsonrpc"',
                r.header("www-authenticate"))
        s.equal(f"HTTP 401 ({what})", "body", b"", r.body)


def http_keep_alive(s):
    w = wire.Wire(*s.wire_args)
    try:
        w.post(wire.legacy("getblockcount"))
        first = w.socket()
        r = w.post(wire.legacy("getbestblockhash"))
        s.equal("HTTP keep-alive", "status", 200, r.status)
        s.require("HTTP keep-alive", "connection", first is not None and w.socket() is first,
                  "the same connection for a second request", "a new connection")
        # An error reply keeps the connection too.
        w.post(wire.legacy("nosuchmethod"))
        r = w.post(wire.legacy("getblockcount"))
        s.equal("HTTP keep-alive", "status after an error", 200, r.status)
        s.require("HTTP keep-alive", "connection after an error reply", w.socket() is first,
                  "the same connection", "a new connection")
    finally:
        w.close()


def authproxy_call(s):
    """Three calls through one AuthServiceProxy, as a client keeps one: its
    Content-Type check, and the kept-alive connection between calls."""
    proxy = s.ap()
    for method in ("getblockcount", "getbestblockhash", "getblockcount"):
        try:
            value = getattr(proxy, method)()
        except JSONRPCException as e:
            s.fail("AuthServiceProxy", method, "a result", f"JSONRPCException {e.error}")
            return
        want = "integer" if method == "getblockcount" else "string"
        s.equal("AuthServiceProxy", method, want, json_type(value))


# ---- the README flow ----

def flow_getnewaddress(s):
    addr = s.call("getnewaddress")
    s.shape("getnewaddress", addr)
    info = s.read("validateaddress", "validateaddress", addr)
    s.field("validateaddress", "isvalid", True, info, "isvalid")
    s.field("validateaddress", "address", addr, info, "address")
    s.ctx["addr"] = addr


def flow_mine_to_maturity(s):
    addr = s.need("addr")
    start = s.call("getblockcount")
    mined = 0
    # Mine until the first of our coinbases is spendable (and a few more, for
    # the payment and the masternode collateral).
    while mined < DEV_COINBASE_MATURITY + 10:
        hashes = s.call("generatetoaddress", 5, addr)
        s.shape("generatetoaddress", hashes)
        s.equal("generatetoaddress", "len(result)", 5, len(hashes))
        mined += 5
    height = s.call("getblockcount")
    s.equal("generatetoaddress", "getblockcount after", start + mined, height)
    s.equal("generatetoaddress", "last hash", s.call("getbestblockhash"), hashes[-1])
    s.ctx["mined_to"] = height


def flow_balances(s):
    s.need("mined_to")
    bal = s.read("getbalances", "getbalances")
    total = s.read("getbalance", "getbalance")
    mine = bal.get("mine", {}) if isinstance(bal, dict) else {}
    s.equal("getbalance", "(result) = getbalances.mine.trusted", mine.get("trusted"), total)
    s.require("getbalances", "mine.trusted", isinstance(total, (int, decimal.Decimal)) and total > 20,
              "more than 20 after mining to maturity", repr(total))
    s.require("getbalances", "mine.immature", (mine.get("immature") or 0) > 0,
              "immature coinbases (the last blocks)", repr(mine.get("immature")))
    last = bal.get("lastprocessedblock") if isinstance(bal, dict) else None
    if isinstance(last, dict):
        s.equal("getbalances", "lastprocessedblock.hash", s.call("getbestblockhash"), last.get("hash"))


def flow_send(s):
    s.need("mined_to")
    to = s.call("getnewaddress")
    txid = s.call("sendtoaddress", to, float(PAYMENT))
    s.shape("sendtoaddress", txid)
    s.require("sendtoaddress", "(result)", isinstance(txid, str) and len(txid) == 64,
              "a txid (64 hex)", repr(txid))
    s.ctx["txid"] = txid
    s.ctx["to"] = to


def flow_mempool_list(s):
    txid = s.need("txid")
    pool = s.read("getrawmempool verbose=false", "getrawmempool")
    s.require("getrawmempool verbose=false", "(result)", txid in pool, f"contains {txid}", repr(pool))
    pool = s.read("getrawmempool verbose=false", "getrawmempool", False)
    s.require("getrawmempool verbose=false", "(result)", txid in pool, f"contains {txid}", repr(pool))


def flow_mempool_verbose(s):
    txid = s.need("txid")
    pool = s.read("getrawmempool verbose=true", "getrawmempool", True)
    entry = pool.get(txid) if isinstance(pool, dict) else None
    s.require("getrawmempool verbose=true", txid, isinstance(entry, dict), "an entry", repr(entry))
    t = "getrawmempool verbose=true"
    s.field(t, "*.height", s.call("getblockcount"), entry, "height")
    s.field(t, "*.ancestorcount", 1, entry, "ancestorcount")
    s.field(t, "*.descendantcount", 1, entry, "descendantcount")
    s.field(t, "*.depends", [], entry, "depends")
    s.field(t, "*.spentby", [], entry, "spentby")
    s.field(t, "*.wtxid", s.call("getrawtransaction", txid, 1).get("hash"), entry, "wtxid")


def flow_mempool_info(s):
    s.need("txid")
    info = s.read("getmempoolinfo", "getmempoolinfo")
    s.require("getmempoolinfo", "size", isinstance(info, dict) and (info.get("size") or 0) >= 1,
              "at least 1 (the payment)", repr(info.get("size") if isinstance(info, dict) else info))


def payment_vout(s, tx):
    for out in tx.get("vout", []):
        if decimal.Decimal(str(out.get("value"))) == PAYMENT:
            return out.get("n")
    s.fail("getrawtransaction verbosity=1", "vout[].value", f"an output of {PAYMENT}", "none")
    raise Blocked("no output of the payment")


def flow_rawtx_mempool(s):
    txid = s.need("txid")
    raw = s.read("getrawtransaction verbosity=0", "getrawtransaction", txid)
    tx = s.read("getrawtransaction verbosity=1", "getrawtransaction", txid, True)
    tx1 = s.read("getrawtransaction verbosity=1", "getrawtransaction", txid, 1)
    s.field("getrawtransaction verbosity=1", "txid", txid, tx, "txid")
    s.field("getrawtransaction verbosity=1", "hex", raw, tx, "hex")
    s.equal("getrawtransaction verbosity=1", "(verbose=true = verbosity 1)", tx, tx1)
    for key in ("blockhash", "confirmations", "blocktime", "time"):
        s.require("getrawtransaction verbosity=1", key, key not in tx,
                  "absent while in the mempool", repr(tx.get(key)))
    s.ctx["raw"] = raw
    s.ctx["payment_n"] = payment_vout(s, tx)


def flow_decoderawtransaction(s):
    raw = s.need("raw")
    txid = s.need("txid")
    dec = s.read("decoderawtransaction", "decoderawtransaction", raw)
    s.field("decoderawtransaction", "txid", txid, dec, "txid")
    tx = s.call("getrawtransaction", txid, 1)
    for key in ("hash", "size", "vsize", "version", "locktime", "vin", "vout"):
        s.field("decoderawtransaction", f"{key} (= getrawtransaction's)", tx.get(key), dec, key)


def flow_gettxout_mempool(s):
    txid = s.need("txid")
    n = s.need("payment_n")
    out = s.read("gettxout", "gettxout", txid, n)
    s.require("gettxout", "(result)", out is not None, "the unspent output", "null")
    s.field("gettxout", "confirmations", 0, out, "confirmations")
    s.field("gettxout", "coinbase", False, out, "coinbase")
    s.equal("gettxout", "(include_mempool=false)", None, s.call("gettxout", txid, n, False))


def flow_getblocktemplate(s):
    txid = s.need("txid")
    # As mining software calls it (Core requires the segwit rule).
    t = s.read("getblocktemplate", "getblocktemplate", {"rules": ["segwit"]})
    txs = [x.get("txid") for x in t.get("transactions", [])]
    s.require("getblocktemplate", "transactions[].txid", txid in txs, f"contains {txid}", repr(txs))
    s.field("getblocktemplate", "previousblockhash", s.call("getbestblockhash"), t, "previousblockhash")
    s.field("getblocktemplate", "height", s.call("getblockcount") + 1, t, "height")


def wallet_entries(s, txid, want):
    entries = s.read("listtransactions", "listtransactions", "*", 1000)
    found = [e for e in entries if isinstance(e, dict) and e.get("txid") == txid]
    cats = sorted(e.get("category") for e in found)
    s.require("listtransactions", "[].category", cats == want,
              f"{want} entries for the payment to our own address", repr(cats))
    return found


def flow_listtransactions_unconfirmed(s):
    txid = s.need("txid")
    for e in wallet_entries(s, txid, ["receive", "send"]):
        cat = e.get("category")
        s.field("listtransactions", f"[{cat}].confirmations", 0, e, "confirmations")
        s.require("listtransactions", f"[{cat}].trusted", "trusted" in e,
                  "present with 0 confirmations", "missing")
        if cat == "send":
            s.require("listtransactions", "[send].amount", e.get("amount") == -PAYMENT,
                      str(-PAYMENT), repr(e.get("amount")))
            fee = e.get("fee")
            s.require("listtransactions", "[send].fee", fee is not None and fee < 0,
                      "a negative number", repr(fee))
            s.require("listtransactions", "[send].abandoned", "abandoned" in e,
                      "boolean (Core adds it to every send entry)", "missing")


def flow_confirm(s):
    addr = s.need("addr")
    txid = s.need("txid")
    [block] = s.call("generatetoaddress", 1, addr)
    s.ctx["block"] = block
    s.require("getrawmempool verbose=false", "(result)", txid not in s.call("getrawmempool"),
              "the payment gone from the mempool", "still there")


def flow_rawtx_confirmed(s):
    txid = s.need("txid")
    block = s.need("block")
    tx = s.read("getrawtransaction verbosity=1", "getrawtransaction", txid, True)
    s.field("getrawtransaction verbosity=1", "confirmations", 1, tx, "confirmations")
    s.field("getrawtransaction verbosity=1", "blockhash", block, tx, "blockhash")
    for key in ("blocktime", "time"):
        s.require("getrawtransaction verbosity=1", key, key in tx, "present once confirmed", "missing")
    s.require("getrawtransaction verbosity=1", "in_active_chain", "in_active_chain" not in tx,
              "absent without a blockhash argument", repr(tx.get("in_active_chain")))
    tx2 = s.read("getrawtransaction verbosity=2", "getrawtransaction", txid, 2)
    s.require("getrawtransaction verbosity=2", "fee", "fee" in tx2,
              "the fee of a confirmed transaction", "missing")
    for vin in tx2.get("vin", []):
        s.require("getrawtransaction verbosity=2", "vin[].prevout", "prevout" in vin,
                  "the spent output of a confirmed transaction", "missing")


def flow_getblock(s):
    txid = s.need("txid")
    block = s.need("block")
    hex0 = s.read("getblock verbosity=0", "getblock", block, 0)
    header_hex = s.read("getblockheader verbose=false", "getblockheader", block, False)
    s.require("getblock verbosity=0", "(result)",
              isinstance(hex0, str) and isinstance(header_hex, str) and hex0.startswith(header_hex),
              "starts with the block's header (getblockheader false)", "does not")
    b1 = s.read("getblock verbosity=1", "getblock", block)
    s.equal("getblock verbosity=1", "(default verbosity 1)", b1, s.call("getblock", block, 1))
    s.field("getblock verbosity=1", "hash", block, b1, "hash")
    s.field("getblock verbosity=1", "confirmations", 1, b1, "confirmations")
    s.require("getblock verbosity=1", "tx", txid in b1.get("tx", []), f"contains {txid}", repr(b1.get("tx")))
    s.field("getblock verbosity=1", "nTx", len(b1.get("tx", [])), b1, "nTx")
    s.field("getblock verbosity=1", "height", s.call("getblockcount"), b1, "height")
    b2 = s.read("getblock verbosity=2", "getblock", block, 2)
    txs = b2.get("tx", []) if isinstance(b2, dict) else []
    s.equal("getblock verbosity=2", "tx[].txid", b1.get("tx"), [t.get("txid") for t in txs])
    if txs:
        cb = (txs[0].get("vin") or [{}])[0]
        # (Its type is the table's finding.)
        s.require("getblock verbosity=2", "tx[0].vin[0].coinbase", "coinbase" in cb,
                  "the coinbase input of the coinbase transaction", repr(cb)[:80])
    for t in txs[1:]:
        s.require("getblock verbosity=2", "tx[].fee (not coinbase)", "fee" in t,
                  "the fee of every non-coinbase transaction", "missing")
    s.ctx["coinbase_txid"] = b1.get("tx", [None])[0]


def flow_getblockheader(s):
    block = s.need("block")
    h = s.read("getblockheader verbose=true", "getblockheader", block)
    s.equal("getblockheader verbose=true", "(default verbose=true)", h, s.call("getblockheader", block, True))
    b = s.call("getblock", block, 1)
    for key, value in h.items():
        if key in core_fields.BLOCK_HEADER_FIELDS or key + "?" in core_fields.BLOCK_HEADER_FIELDS:
            s.equal("getblockheader verbose=true", f"{key} (= getblock's)", b.get(key), value)


def flow_gettxout_confirmed(s):
    txid = s.need("txid")
    n = s.need("payment_n")
    out = s.read("gettxout", "gettxout", txid, n)
    s.field("gettxout", "confirmations", 1, out, "confirmations")
    s.field("gettxout", "bestblock", s.call("getbestblockhash"), out, "bestblock")
    cb = s.need("coinbase_txid")
    out = s.read("gettxout", "gettxout", cb, 0)
    s.field("gettxout", "coinbase (of a coinbase output)", True, out, "coinbase")


def flow_listunspent(s):
    txid = s.need("txid")
    n = s.need("payment_n")
    utxos = s.read("listunspent", "listunspent")
    mine = [u for u in utxos if u.get("txid") == txid and u.get("vout") == n]
    s.require("listunspent", "[]", len(mine) == 1, f"the payment {txid}:{n}", "absent")
    for u in mine:
        s.field("listunspent", "[].confirmations", 1, u, "confirmations")
        s.field("listunspent", "[].amount", PAYMENT, u, "amount")
    # Core leaves immature coinbase outputs out unless
    # query_options.include_immature_coinbase.
    immature = []
    for u in utxos:
        if u.get("confirmations", 0) < DEV_COINBASE_MATURITY:
            out = s.call("gettxout", u.get("txid"), u.get("vout"))
            if isinstance(out, dict) and out.get("coinbase"):
                immature.append(f"{u.get('txid')[:16]}…:{u.get('vout')}")
    s.require("listunspent", "[]", not immature, "no immature coinbase output (Core's default)",
              f"{len(immature)} immature coinbase outputs, e.g. {immature[:2]}")


def flow_listtransactions_confirmed(s):
    txid = s.need("txid")
    block = s.need("block")
    for e in wallet_entries(s, txid, ["receive", "send"]):
        cat = e.get("category")
        s.field("listtransactions", f"[{cat}].confirmations", 1, e, "confirmations")
        s.field("listtransactions", f"[{cat}].blockhash", block, e, "blockhash")
        for key in ("blockheight", "blockindex", "blocktime"):
            s.require("listtransactions", f"[{cat}].{key}", key in e, "present once confirmed", "missing")
        if cat == "send":
            s.require("listtransactions", "[send].abandoned", "abandoned" in e,
                      "boolean (Core adds it to every send entry)", "missing")


# ---- the other read methods ----

def read_blockchaininfo(s):
    info = s.read("getblockchaininfo", "getblockchaininfo")
    s.field("getblockchaininfo", "blocks", s.call("getblockcount"), info, "blocks")
    s.field("getblockchaininfo", "bestblockhash", s.call("getbestblockhash"), info, "bestblockhash")


def read_counts_and_hashes(s):
    n = s.read("getblockcount", "getblockcount")
    best = s.read("getbestblockhash", "getbestblockhash")
    s.equal("getblockhash", f"getblockhash({n})", best, s.read("getblockhash", "getblockhash", n))
    genesis = s.read("getblockhash", "getblockhash", 0)
    s.require("getblockhash", "getblockhash(0)", isinstance(genesis, str) and len(genesis) == 64,
              "the genesis hash (64 hex)", repr(genesis))
    s.field("getblockheader verbose=true", "height of getblockhash(0)", 0,
            s.read("getblockheader verbose=true", "getblockheader", genesis), "height")


def read_mininginfo(s):
    info = s.read("getmininginfo", "getmininginfo")
    s.field("getmininginfo", "blocks", s.call("getblockcount"), info, "blocks")


def read_validateaddress_invalid(s):
    info = s.read("validateaddress", "validateaddress", "not-an-address")
    s.field("validateaddress", "isvalid", False, info, "isvalid")
    s.require("validateaddress", "error", "error" in info, "why it is invalid", "missing")


def wait_for_peers(s):
    deadline = time.time() + 60
    while True:
        n = s.call("getconnectioncount")
        if n >= s.args.min_peers or time.time() > deadline:
            return n
        time.sleep(0.5)


def read_networkinfo(s):
    s.read("getnetworkinfo", "getnetworkinfo")


def read_peers(s):
    n = wait_for_peers(s)
    s.require("getconnectioncount", "(result)", n >= s.args.min_peers,
              f"at least {s.args.min_peers} (--min-peers) within 60 s", repr(n))
    s.equal("getconnectioncount", "(result)", n, s.read("getconnectioncount", "getconnectioncount"))
    peers = s.read("getpeerinfo", "getpeerinfo")
    s.require("getpeerinfo", "[]", len(peers) >= s.args.min_peers,
              f"at least {s.args.min_peers} peer entries", str(len(peers)))


def read_listbanned(s):
    s.call("setban", BANNED, "add")
    try:
        bans = s.read("listbanned", "listbanned")
        addrs = [b.get("address") for b in bans if isinstance(b, dict)]
        # Core lists the banned subnet: 192.0.2.1/32.
        s.require("listbanned", "[].address", f"{BANNED}/32" in addrs,
                  f"{BANNED}/32", repr(addrs))
    finally:
        s.call("setban", BANNED, "remove")
    s.equal("listbanned", "(after setban remove)", [], s.call("listbanned"))


# ---- Dash ----

def dash_bestchainlock(s):
    t = "getbestchainlock"
    try:
        cl = s.call(t)
    except JSONRPCError as e:
        # "Throws an error if there is no known ChainLock yet": Dash Core's
        # RPC_INTERNAL_ERROR, "Unable to find any ChainLock".
        s.equal(t, "error.code", -32603, e.error.get("code"))
        s.equal(t, "error.message", "Unable to find any ChainLock", e.error.get("message"))
        err = s.error_of("AuthServiceProxy", lambda: s.ap().getbestchainlock())
        s.equal(t, "error.code (AuthServiceProxy)", -32603, err and err.get("code"))
        r = s.wire.post(wire.legacy(t))
        s.equal(t, "HTTP status (legacy request, error)", 500, r.status)
    else:
        s.shape(t, cl)


def dash_governance(s):
    info = s.read("getgovernanceinfo", "getgovernanceinfo")
    nxt = info.get("nextsuperblock") if isinstance(info, dict) else None
    if isinstance(nxt, int):
        s.equal("getgovernanceinfo", "nextsuperblock % superblockcycle", 0,
                nxt % info["superblockcycle"])
        budget = s.read("getsuperblockbudget", "getsuperblockbudget", nxt)
        s.equal("getsuperblockbudget", "(result) = governancebudget",
                info.get("governancebudget"), budget)


def dash_register(s):
    addr = s.need("addr")
    service = s.args.service or service_from_networkinfo(s)
    reg = s.call("protx", "register", s.args.operator_pubkey, service)
    pro = reg.get("proTxHash") if isinstance(reg, dict) else reg
    s.require("protx register", "proTxHash", isinstance(pro, str) and len(pro) == 64,
              "a proTxHash", repr(reg))
    s.call("generatetoaddress", 1, addr)
    s.ctx["pro"] = pro


def service_from_networkinfo(s):
    """The node's P2P multiaddr with its peer id, for `protx register`."""
    info = s.call("getnetworkinfo")
    for a in info.get("localaddresses", []):
        if isinstance(a, str) and "/p2p/" in a:
            return a
        if isinstance(a, dict):
            if "/p2p/" in str(a.get("address")):
                return a["address"]
            if info.get("peerid") and "port" in a:
                return f"/ip4/{a['address']}/tcp/{a['port']}/p2p/{info['peerid']}"
    raise Blocked("no P2P address with a peer id in getnetworkinfo: pass --service")


def dash_protx(s):
    pro = s.need("pro")
    hashes = s.read("protx list", "protx", "list")
    s.require("protx list", "[]", pro in hashes, f"contains {pro}", repr(hashes))
    valid = s.read("protx list", "protx", "list", "valid")
    s.require("protx list", "[] (valid)", pro in valid, f"contains {pro}", repr(valid))
    detailed = s.read("protx list detailed=true", "protx", "list", "registered", True)
    pros = [d.get("proTxHash") for d in detailed if isinstance(d, dict)]
    if pros:
        s.require("protx list detailed=true", "[].proTxHash", pro in pros, f"contains {pro}", repr(pros))
    info = s.read("protx info", "protx", "info", pro)
    s.field("protx info", "proTxHash", pro, info, "proTxHash")
    s.field("protx info", "state.pubKeyOperator", s.args.operator_pubkey, info.get("state"), "pubKeyOperator")


def dash_masternode(s):
    pro = s.need("pro")
    count = s.read("masternode count", "masternode", "count")
    if "total" in count:
        s.require("masternode count", "total", count["total"] >= 1, "at least 1", repr(count["total"]))
    mns = s.read("masternode list", "masternode", "list")
    pros = [m.get("proTxHash") for m in mns.values() if isinstance(m, dict) and "proTxHash" in m]
    s.require("masternode list", "*.proTxHash", pro in pros or not pros, f"an entry of {pro}",
              f"entries' proTxHash: {pros}")
    status = s.read("masternode status", "masternode", "status")
    s.field("masternode status", "proTxHash", pro, status, "proTxHash")
    s.field("masternode status", "state", "READY", status, "state")
    s.read("masternode winners", "masternode", "winners")


def dash_quorum(s):
    s.read("quorum list", "quorum", "list")


def dash_gobject(s):
    """Dash's governance flow as its tools drive it: `gobject prepare` with
    the hex of the proposal JSON, `gobject submit` with the returned txid,
    then list, get, vote-many (the wallet holds the registered masternode's
    voting key), getcurrentvotes and count."""
    addr = s.need("addr")
    s.need("pro")
    data = json.dumps({"type": 1, "name": "compat", "url": "https://example.org/compat",
                       "payment_address": addr, "payment_amount": 1})
    data_hex = data.encode().hex()
    now = int(time.time())
    txid = s.call("gobject", "prepare", "0", 1, now, data_hex)
    s.require("gobject prepare", "(result)", isinstance(txid, str) and len(txid) == 64,
              "a txid", repr(txid))
    h = s.call("gobject", "submit", "0", 1, now, data_hex, txid)
    s.equal("gobject submit", "(result)", txid, h)
    s.call("generatetoaddress", 1, addr)
    objects = s.read("gobject list", "gobject", "list")
    s.require("gobject list", "keys", txid in objects, f"contains {txid}", repr(list(objects)))
    obj = s.read("gobject get", "gobject", "get", txid)
    s.equal("gobject get", "Hash", txid, obj.get("Hash"))
    s.equal("gobject get", "DataHex (decodes to the data)",
            json.loads(data)["name"], json.loads(bytes.fromhex(obj.get("DataHex", "")).decode())["name"])
    voted = s.call("gobject", "vote-many", txid, "funding", "yes")
    s.equal("gobject vote-many", "overall",
            "Voted successfully 1 time(s) and failed 0 time(s).", voted.get("overall"))
    s.call("generatetoaddress", 1, addr)
    votes = s.read("gobject getcurrentvotes", "gobject", "getcurrentvotes", txid)
    s.equal("gobject getcurrentvotes", "(entries)", 1, len(votes))
    s.equal("gobject get", "YesCount (after the vote is mined)", 1,
            s.call("gobject", "get", txid).get("YesCount"))
    count = s.call("gobject", "count")
    s.require("gobject count", "(result)", isinstance(count, str) and count.startswith("Governance Objects: "),
              "Dash's summary string", repr(count))


# ---- errors ----

def error_check(s, name, call, code, message=None, prefix=None, http=500):
    """Both libraries raise the error; the legacy request gets `http`."""
    method, params = call[0], call[1:]
    for lib, proxy in (("RawProxy", s.raw), ("AuthServiceProxy", s.ap())):
        err = s.error_of(lib, lambda: getattr(proxy, method)(*params))
        if err is None:
            s.fail(name, f"{lib}", f"error {code}", "a result")
            continue
        s.equal(name, f"error.code ({lib})", code, err.get("code"))
        msg = err.get("message") or ""
        if message is not None:
            s.equal(name, f"error.message ({lib})", message, msg)
        if prefix is not None:
            s.require(name, f"error.message ({lib})", msg.startswith(prefix),
                      f"starts with {prefix!r}", repr(msg[:80]))
    r = s.wire.post(wire.legacy(method, *params))
    s.equal(name, "HTTP status (legacy request)", http, r.status)
    s.equal(name, "Content-Type", "application/json", r.header("content-type"))
    try:
        body = r.json()
    except ValueError:
        s.fail(name, "body", "JSON", repr(r.body[:60]))
        return
    s.equal(name, "legacy reply members", ["error", "id", "result"], sorted(body))
    s.equal(name, "result", None, body.get("result"))
    s.equal(name, "error.code", code, (body.get("error") or {}).get("code"))


def error_unknown_method(s):
    error_check(s, "unknown method", ("nosuchmethod",), -32601, message="Method not found", http=404)


def error_arity(s):
    # Core: the method's help, starting with its usage line.
    error_check(s, "wrong arity: getblockcount('junk', 5)", ("getblockcount", "junk", 5), -1,
                prefix="getblockcount")
    error_check(s, "wrong arity: getblockhash()", ("getblockhash",), -1, prefix="getblockhash")


def error_type(s):
    error_check(s, "wrong type: getblockhash('x')", ("getblockhash", "x"), -3, prefix="Wrong type passed")


def error_range(s):
    error_check(s, "out of range: getblockhash(10**9)", ("getblockhash", 10**9), -8,
                message="Block height out of range")


def jsonrpc2_single(s):
    t = "JSON-RPC 2.0"
    r = s.wire.post(wire.v2("getblockcount"))
    s.equal(t, "HTTP status (success)", 200, r.status)
    body = r.json()
    s.equal(t, "members (success)", ["id", "jsonrpc", "result"], sorted(body))
    s.equal(t, "jsonrpc", "2.0", body.get("jsonrpc"))
    r = s.wire.post(wire.v2("nosuchmethod"))
    s.equal(t, "HTTP status (error)", 200, r.status)
    body = r.json()
    s.equal(t, "members (error)", ["error", "id", "jsonrpc"], sorted(body))
    s.equal(t, "error.code", -32601, (body.get("error") or {}).get("code"))
    r = s.wire.post(wire.v2("getblockcount", notification=True))
    s.equal(t, "HTTP status (notification)", 204, r.status)
    s.equal(t, "body (notification)", b"", r.body)


# ---- batches ----

def batch_calls():
    return [
        ("getblockcount",),
        ("getbestblockhash",),
        ("getblockhash", 0),
        ("nosuchmethod",),
        ("getblockhash", 1),
    ]


def expected_batch(s):
    n = s.call("getblockcount")
    return [n, s.call("getbestblockhash"), s.call("getblockhash", 0), None, s.call("getblockhash", 1)]


def batch_legacy(s):
    """python-bitcoinlib's RawProxy._batch with legacy (1.0) items: every
    item carries result, error (null on success) and id, in order."""
    t = "batch (RawProxy._batch, 1.0 items)"
    want = expected_batch(s)
    items = [wire.v1(*c) for c in batch_calls()]
    replies = s.raw._batch(items)
    s.require(t, "(result)", isinstance(replies, list) and len(replies) == len(items),
              f"an array of {len(items)}", repr(replies)[:80])
    if not isinstance(replies, list):
        return
    for i, (item, reply, value) in enumerate(zip(items, replies, want)):
        s.equal(t, f"[{i}].id", item["id"], reply.get("id"))
        s.equal(t, f"[{i}] members", ["error", "id", "result"], sorted(reply))
        if value is None:
            s.equal(t, f"[{i}].error.code", -32601, (reply.get("error") or {}).get("code"))
            s.equal(t, f"[{i}].result", None, reply.get("result"))
        else:
            s.equal(t, f"[{i}].result", value, reply.get("result"))
            s.equal(t, f"[{i}].error", None, reply.get("error"))


def batch_v2(s):
    """A 2.0 batch on the wire: HTTP 200, items in order, success items
    without "error" and error items without "result" (Core 28)."""
    t = "batch (2.0 items, on the wire)"
    want = expected_batch(s)
    items = [wire.v2(*c) for c in batch_calls()]
    r = s.wire.post(items)
    s.equal(t, "HTTP status", 200, r.status)
    s.equal(t, "Content-Type", "application/json", r.header("content-type"))
    replies = r.json()
    s.require(t, "(result)", isinstance(replies, list) and len(replies) == len(items),
              f"an array of {len(items)}", repr(replies)[:80])
    if not isinstance(replies, list):
        return
    for i, (item, reply, value) in enumerate(zip(items, replies, want)):
        s.equal(t, f"[{i}].id", item["id"], reply.get("id"))
        s.equal(t, f"[{i}].jsonrpc", "2.0", reply.get("jsonrpc"))
        if value is None:
            s.equal(t, f"[{i}] members", ["error", "id", "jsonrpc"], sorted(reply))
            s.equal(t, f"[{i}].error.code", -32601, (reply.get("error") or {}).get("code"))
        else:
            s.equal(t, f"[{i}] members", ["id", "jsonrpc", "result"], sorted(reply))
            s.equal(t, f"[{i}].result", value, reply.get("result"))


def batch_authproxy(s):
    """AuthServiceProxy.batch_ writes 2.0 items and reads every reply's
    "error" member with response['error']: against Bitcoin Core 28, which
    omits "error" from successful 2.0 replies, python-bitcoinrpc 1.0 raises
    KeyError('error') (jgarzik/python-bitcoinrpc#112). The node must answer
    as Core does, so the library must fail the same way; the replies' order
    and contents are checked on the wire (batch_v2)."""
    t = "batch (AuthServiceProxy.batch_)"
    calls = [["getblockcount"], ["getbestblockhash"], ["getblockhash", 0]]
    try:
        results = s.ap().batch_(calls)
    except KeyError as e:
        s.equal(t, "KeyError (as against Core 28)", "'error'", str(e))
    except JSONRPCException as e:
        s.fail(t, "", "KeyError('error'), as against Core 28", f"JSONRPCException {e.error}")
    else:
        s.fail(t, "[].error", "absent from successful 2.0 replies (Core 28), so batch_ raises "
                              "KeyError('error')", f"present: batch_ returned {results!r}"[:160])


CHECKS = [
    ("HTTP: Content-Type is exactly application/json", http_content_type),
    ("HTTP: 401 and WWW-Authenticate without credentials", http_unauthorized),
    ("HTTP: keep-alive", http_keep_alive),
    ("AuthServiceProxy: a call succeeds", authproxy_call),
    ("README flow: getnewaddress, validateaddress", flow_getnewaddress),
    ("README flow: generatetoaddress to coinbase maturity", flow_mine_to_maturity),
    ("README flow: getbalances, getbalance", flow_balances),
    ("README flow: sendtoaddress", flow_send),
    ("mempool: getrawmempool", flow_mempool_list),
    ("mempool: getrawmempool true", flow_mempool_verbose),
    ("mempool: getmempoolinfo", flow_mempool_info),
    ("mempool: getrawtransaction 0/true/1", flow_rawtx_mempool),
    ("mempool: decoderawtransaction", flow_decoderawtransaction),
    ("mempool: gettxout", flow_gettxout_mempool),
    ("mempool: getblocktemplate", flow_getblocktemplate),
    ("mempool: listtransactions", flow_listtransactions_unconfirmed),
    ("README flow: generatetoaddress confirms the payment", flow_confirm),
    ("confirmed: getrawtransaction 1/2", flow_rawtx_confirmed),
    ("confirmed: getblock 0/1/2", flow_getblock),
    ("confirmed: getblockheader true/false", flow_getblockheader),
    ("confirmed: gettxout", flow_gettxout_confirmed),
    ("confirmed: listunspent", flow_listunspent),
    ("confirmed: listtransactions", flow_listtransactions_confirmed),
    ("getblockchaininfo", read_blockchaininfo),
    ("getblockcount, getbestblockhash, getblockhash", read_counts_and_hashes),
    ("getmininginfo", read_mininginfo),
    ("validateaddress (invalid)", read_validateaddress_invalid),
    ("getnetworkinfo", read_networkinfo),
    ("getconnectioncount, getpeerinfo", read_peers),
    ("setban, listbanned", read_listbanned),
    ("Dash: getbestchainlock", dash_bestchainlock),
    ("Dash: getgovernanceinfo, getsuperblockbudget", dash_governance),
    ("Dash: protx register (from the wallet), mined", dash_register),
    ("Dash: protx list, protx list registered true, protx info", dash_protx),
    ("Dash: masternode count, list, status, winners", dash_masternode),
    ("Dash: quorum list", dash_quorum),
    ("Dash: gobject prepare (hex), submit, list, get, vote-many, getcurrentvotes, count",
     dash_gobject),
    ("error: unknown method", error_unknown_method),
    ("error: wrong arity", error_arity),
    ("error: wrong type", error_type),
    ("error: out of range", error_range),
    ("JSON-RPC 2.0: single calls and a notification", jsonrpc2_single),
    ("batch: RawProxy._batch, 1.0 items in order", batch_legacy),
    ("batch: 2.0 items in order", batch_v2),
    ("batch: AuthServiceProxy.batch_", batch_authproxy),
]


def credentials(args):
    if args.cookie:
        with open(os.path.expanduser(args.cookie)) as f:
            user, _, password = f.read().strip().partition(":")
        return user, password
    if args.user is None or args.password is None:
        sys.exit("error: give --cookie FILE, or --user and --password")
    return args.user, args.password


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the node's RPC URL, e.g. http://127.0.0.1:28432")
    p.add_argument("--cookie", help="the node's .cookie file")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--operator-pubkey", required=True,
                   help="the node's operator public key (96 hex), from `rusty-cli masternode genkey`")
    p.add_argument("--service", help="the multiaddr to register the masternode at "
                   "(default: the node's own, from getnetworkinfo)")
    p.add_argument("--min-peers", type=int, default=1,
                   help="peers the node must have, so that getpeerinfo's entries are checked")
    p.add_argument("--timeout", type=int, default=60, help="seconds per HTTP request")
    p.add_argument("--deadline", type=int, default=600, help="seconds for the whole run")
    p.add_argument("-v", "--verbose", action="store_true", help="tracebacks for exceptions")
    args = p.parse_args()
    user, password = credentials(args)

    def on_alarm(*_):
        raise Deadline()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.deadline)

    s = Suite(args, user, password)
    try:
        for name, fn in CHECKS:
            s.run(name, fn)
    except Deadline:
        print(f"FAIL  deadline: the run took longer than {args.deadline} s")
        s.results.append(("deadline", False, []))
    signal.alarm(0)
    return report(s)


def report(s):
    failed = [r for r in s.results if not r[1]]
    mismatches = [m for _, _, problems in s.results for m in problems]
    print()
    if mismatches:
        print(f"Mismatches ({len(mismatches)}): method  field  expected  got")
        for m in mismatches:
            print(f"  {m.line()}")
        print()
    if s.excepted:
        print("Core fields absent and excepted (core_fields.EXCEPTIONS):")
        for (table, path), reason in sorted(s.excepted.items()):
            print(f"  {table}  {path}: {reason}")
        print()
    print(f"{len(s.results)} checks: {len(s.results) - len(failed)} passed, {len(failed)} failed; "
          f"{len(mismatches)} mismatches")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
