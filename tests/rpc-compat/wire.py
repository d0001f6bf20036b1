"""Raw HTTP requests, for what the client libraries do not show: status
codes, headers, the exact members of a response, batches item by item.

The requests are the bytes the libraries send: `legacy()` is
AuthServiceProxy's and RawProxy's single call (`{"version": "1.1", "method",
"params", "id"}`, no "jsonrpc" member, so Bitcoin Core answers it in the
legacy 1.0 style), `v2()` a JSON-RPC 2.0 call as AuthServiceProxy.batch_
writes its items.
"""

import base64
import http.client
import json
import urllib.parse
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict  # lower-case name -> value
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())


class Wire:
    """One keep-alive HTTP connection to the node."""

    def __init__(self, url, user, password, timeout=30):
        parsed = urllib.parse.urlparse(url)
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.path = parsed.path or "/"
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.timeout = timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post(self, body, auth=True, headers=None):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        h = {"Host": self.host, "Content-Type": "application/json"}
        if auth:
            h["Authorization"] = self.auth
        h.update(headers or {})
        return self.request("POST", body, h)

    def request(self, method, body, headers):
        self.conn.request(method, self.path, body, headers)
        r = self.conn.getresponse()
        data = r.read()
        return Reply(
            status=r.status,
            reason=r.reason,
            headers={k.lower(): v for k, v in r.getheaders()},
            body=data,
        )

    def socket(self):
        return self.conn.sock

    def close(self):
        self.conn.close()


_next_id = [1000]


def _id():
    _next_id[0] += 1
    return _next_id[0]


def legacy(method, *params):
    """A call as AuthServiceProxy.__call__ and bitcoin.rpc.RawProxy write it."""
    return {"version": "1.1", "method": method, "params": list(params), "id": _id()}


def v2(method, *params, notification=False):
    """A JSON-RPC 2.0 call (AuthServiceProxy.batch_ writes its items so)."""
    req = {"jsonrpc": "2.0", "method": method, "params": list(params)}
    if not notification:
        req["id"] = _id()
    return req


def v1(method, *params):
    """A batch item in the legacy style: no "jsonrpc" member."""
    return {"method": method, "params": list(params), "id": _id()}
