"""The web UI in a real browser: Debian's Chromium driven by Selenium.

Run by rusty-cli/tests/it/ui_browser.rs against a real dev node with the UI
and metrics on, and a peer node that publishes a clip and broadcasts a live
stream. Every check prints one line; the first failure raises and the
script exits non-zero. Page-load times (a node with --blocks blocks) are
written to --report as JSON.
"""

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


STARTED = time.time()


def log(msg):
    print(f"[{time.time() - STARTED:6.1f} s] {msg}", flush=True)


class Rpc:
    def __init__(self, url, cookie_file):
        self.url = url
        with open(cookie_file) as f:
            self.user, self.password = f.read().strip().split(":", 1)

    def __call__(self, method, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        req = urllib.request.Request(self.url, data=body.encode(), method="POST")
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=120) as res:
            out = json.load(res)
        if out.get("error"):
            raise RuntimeError(f"{method}: {out['error']}")
        return out["result"]


def wait(what, f, timeout=30.0, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = f()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - the page may be mid-render
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def http(url, method="GET", headers=None, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def browser(profile_dir):
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,1000", f"--user-data-dir={profile_dir}",
    ]:
        opts.add_argument(flag)
    # Selenium Manager is never asked to fetch a browser or a driver.
    os.environ["SE_OFFLINE"] = "true"
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def shot(driver, args, name):
    path = os.path.join(args.screenshots, f"{name}.png")
    driver.save_screenshot(path)
    log(f"  screenshot {path}")


def playing(driver, what, timeout=60.0):
    """Waits until the page's <video> has played past 1 s with no error,
    then checks that currentTime keeps advancing."""

    def state():
        return driver.execute_script(
            "const v = document.getElementById('player');"
            "return v ? [v.currentTime, v.error ? v.error.code : null,"
            " document.getElementById('player-state').textContent] : null;"
        )

    def past_one_second():
        s = state()
        if s and s[1] is not None:
            raise AssertionError(f"{what}: media error {s[1]} ({s[2]})")
        return s and s[0] > 1.0

    wait(f"{what} to play past 1 s", past_one_second, timeout)
    t0 = state()[0]
    wait(f"{what} to keep playing", lambda: state()[0] > t0 + 0.5, 20)
    s = state()
    assert s[1] is None, f"{what}: media error {s[1]}"
    log(f"ok  {what} plays (currentTime {s[0]:.2f} s, no media error)")


def check_home_follows_blocks(driver, args, rpc, mine_to):
    driver.get(args.ui + "/")
    count = rpc("getblockcount")
    wait("home height = getblockcount", lambda: text(driver, "#height") == str(count))
    log(f"ok  home shows height {count} = getblockcount")
    # Reachability is AutoNAT's finding, as getnetworkinfo reports it (it
    # may move from unknown to public between the page and the call, so
    # the page's value is checked against the possible ones).
    shown = text(driver, "#reachability").split(" · ")[0]
    assert shown in ("unknown", "public", "private"), f"reachability card shows {shown!r}"
    assert rpc("getnetworkinfo")["reachability"] in ("unknown", "public", "private")
    rpc("generatetoaddress", 1, mine_to)
    count2 = rpc("getblockcount")
    wait("home to follow a new block", lambda: text(driver, "#height") == str(count2), 15)
    wait("the strip to show the new block",
         lambda: driver.find_element(By.CSS_SELECTOR, "#blocks-strip a.block").get_attribute("data-height")
         == str(count2), 15)
    log(f"ok  home follows a newly mined block to {count2} (server-sent events)")
    shot(driver, args, "home")
    return count2


def check_block_click(driver, args, rpc, height):
    tile = driver.find_element(By.CSS_SELECTOR, f'#blocks-strip a.block[data-height="{height - 2}"]')
    want = rpc("getblockhash", height - 2)
    assert tile.get_attribute("data-hash") == want
    tile.click()
    wait("the block page", lambda: text(driver, "#block-hash") == want)
    log(f"ok  clicking block {height - 2} opens its page with hash {want[:16]}…")
    shot(driver, args, "explorer-block")
    # Its coinbase, and the address it pays.
    driver.find_element(By.CSS_SELECTOR, "#block-txs a").click()
    txid = wait("the tx page", lambda: text(driver, "#tx-id"))
    assert rpc("getrawtransaction", txid, True)["txid"] == txid
    log(f"ok  the transaction page shows {txid[:16]}…")
    shot(driver, args, "explorer-tx")
    driver.find_element(By.CSS_SELECTOR, 'a[href^="#/address/"]').click()
    addr = wait("the address page", lambda: text(driver, "#address"))
    assert text(driver, "#address-balance").endswith("RSC")
    log(f"ok  the address page shows {addr} and its balance")
    shot(driver, args, "explorer-address")
    # Search by height.
    box = driver.find_element(By.ID, "search-input")
    box.clear()
    box.send_keys(str(height))
    driver.find_element(By.CSS_SELECTOR, "#search button").click()
    wait("search by height", lambda: text(driver, "#block-hash") == rpc("getblockhash", height))
    log(f"ok  searching {height} opens that block")


def check_direct_playback(args, rpc):
    """stream_view names the node's own playback URL; a Range request there
    returns the content's bytes as they are (no JSON, no base64), equal to
    what stream_read returns in base64 over RPC."""
    viewing = rpc("stream_view", args.clip)
    url = viewing.get("playback_url")
    assert url == f"{args.ui}/media/{args.clip}/content", viewing
    status, body = http(url, headers={"Range": "bytes=100-4195"})
    assert status == 206, status
    assert len(body) == 4096, len(body)
    via_rpc = base64.b64decode(rpc("stream_read", args.clip, 100, 4096)["data"])
    assert body == via_rpc, "the node's playback bytes differ from stream_read's"
    status, _ = http(f"{args.ui}/media/{'0' * 64}/content")
    assert status == 404, status
    log("ok  stream_view names the node's playback URL; its Range bytes equal stream_read's, without JSON")


def check_media(driver, args):
    driver.get(args.ui + "/#/media")
    wait("the catalog to list the clip",
         lambda: driver.find_elements(By.CSS_SELECTOR, f'a.media-link[data-id="{args.clip}"]'), 30)
    link = driver.find_element(By.CSS_SELECTOR, f'a.media-link[data-id="{args.clip}"]')
    assert link.text == "<img src=x onerror=alert(1)> UI test clip", link.text
    assert not driver.find_elements(By.CSS_SELECTOR, "#catalog img"), "a title became HTML"
    log("ok  the catalog lists the published clip, its hostile title shown as text")
    shot(driver, args, "media-catalog")
    driver.get(f"{args.ui}/#/media/{args.clip}")
    playing(driver, "the published clip")
    wait("the provider table", lambda: driver.find_elements(By.CSS_SELECTOR, "#providers tbody tr"), 20)
    log("ok  the provider table lists the clip's provider")
    shot(driver, args, "media-player")
    driver.get(f"{args.ui}/#/media/{args.live}")
    playing(driver, "the live stream", timeout=90)
    shot(driver, args, "media-live")


def check_security(args):
    status, _ = http(args.ui + "/api/v1/wallet")
    assert status == 401, f"wallet without a session: {status}"
    log("ok  GET /api/v1/wallet without a session answers 401")
    status, _ = http(args.ui + "/api/v1/login", "POST",
                     {"Origin": "http://evil.example", "Content-Type": "application/json"},
                     b'{"password": "x"}')
    assert status == 403, f"POST with a foreign Origin: {status}"
    log("ok  a POST with a foreign Origin answers 403")
    port = args.ui.rsplit(":", 1)[1]
    status, _ = http(args.ui + "/", headers={"Host": f"rebind.example:{port}"})
    assert status == 403, f"bad Host: {status}"
    log("ok  a request with a Host outside the allow-list answers 403")
    status, _ = http(args.ui + "/api/v1/wallet/send", "POST",
                     {"Origin": args.ui, "Content-Type": "application/json"},
                     b'{"confirmation": "x", "password": "x"}')
    assert status == 403, f"POST without a CSRF token: {status}"
    log("ok  a POST without a session's CSRF token answers 403")
    status, body = http(args.ui + "/")
    assert status == 200
    # Headers are checked on a fresh request.
    req = urllib.request.urlopen(args.ui + "/", timeout=10)
    csp = req.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp, csp
    assert req.headers.get("X-Content-Type-Options") == "nosniff"
    assert req.headers.get("Referrer-Policy") == "no-referrer"
    log("ok  CSP default-src 'self', nosniff and no-referrer on every answer")


def check_wallet(driver, args, rpc, peer_rpc):
    driver.get(args.ui + "/#/wallet")
    wait("the login form", lambda: driver.find_elements(By.ID, "login-password"))
    shot(driver, args, "wallet-login")
    driver.find_element(By.ID, "login-password").send_keys(rpc.password)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    wait("the wallet page", lambda: text(driver, "#balance").endswith("RSC"))
    log(f"ok  logged in with the RPC cookie: balance {text(driver, '#balance')}")
    dest = peer_rpc("getnewaddress")
    driver.find_element(By.ID, "send-address").send_keys(dest)
    driver.find_element(By.ID, "send-amount").send_keys("1.5")
    driver.find_element(By.ID, "send-prepare").click()
    wait("the confirmation", lambda: text(driver, "#confirm-amount") == "1.50000000 RSC")
    fee = text(driver, "#confirm-fee")
    assert text(driver, "#confirm-address") == dest
    assert fee != "0.00000000 RSC", fee
    log(f"ok  the confirmation shows amount 1.50000000 RSC, fee {fee}, address {dest}")
    shot(driver, args, "wallet-confirm")
    before = len(rpc("getrawmempool"))
    driver.find_element(By.ID, "confirm-password").send_keys("wrong")
    driver.find_element(By.ID, "confirm-send").click()
    wait("the wrong password's refusal", lambda: "wrong password" in text(driver, "#send-result"))
    assert len(rpc("getrawmempool")) == before, "a send with a wrong password reached the mempool"
    log("ok  a send confirmed with a wrong password sends nothing")
    driver.find_element(By.ID, "send-prepare").click()
    wait("the confirmation again", lambda: text(driver, "#confirm-amount") == "1.50000000 RSC")
    driver.find_element(By.ID, "confirm-password").send_keys(rpc.password)
    driver.find_element(By.ID, "confirm-send").click()
    txid = wait("the sent txid", lambda: text(driver, "#sent-txid"))
    assert txid in rpc("getrawmempool"), "the sent transaction is not in the mempool"
    rpc("generatetoaddress", 1, rpc("getnewaddress"))
    utxos = rpc("getaddressutxos", {"addresses": [dest]})
    got = sum(u["satoshis"] for u in utxos)
    assert got == 150_000_000, f"the address holds {got} base units"
    log(f"ok  the send {txid[:16]}… moved 1.5 RSC to {dest} (getaddressutxos after a block)")
    shot(driver, args, "wallet")


def check_pages(driver, args):
    for page in ["masternodes", "governance"]:
        driver.get(f"{args.ui}/#/{page}")
        wait(f"the {page} page", lambda: driver.execute_script("return document.body.dataset.page") == f"/{page}")
        errors = driver.find_elements(By.ID, "error")
        assert not errors, f"{page}: {errors[0].text}"
        log(f"ok  the {page} page renders")
        if page == "governance":
            cell = driver.find_element(By.CSS_SELECTOR, "#proposals tbody tr td")
            assert cell.text == "<b>Fund</b> the explorer", cell.text
            assert not driver.find_elements(By.CSS_SELECTOR, "#proposals b"), "a title became HTML"
            log("ok  the proposal and its tally are listed, its title shown as text")
        shot(driver, args, page)


def check_metrics(args, rpc):
    status, body = http(args.metrics + "/metrics")
    assert status == 200, status
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    want = {
        "rusty_chain_height": "gauge",
        "rusty_chain_reorgs": "counter",
        "rusty_block_validation_seconds": "histogram",
        "rusty_mempool_transactions": "gauge",
        "rusty_mempool_bytes": "gauge",
        "rusty_peers": "gauge",
        "rusty_rpc_requests": "counter",
        "rusty_rpc_request_duration_seconds": "histogram",
        "rusty_media_chunks": "counter",
        "rusty_media_bytes": "counter",
        "rusty_media_stalls": "counter",
        "rusty_media_live_segment_lag_seconds": "gauge",
        "rusty_masternodes": "gauge",
        "rusty_chainlock_lag_blocks": "gauge",
        "rusty_process_cpu_seconds": "counter",
        "rusty_process_resident_memory_bytes": "gauge",
        "rusty_process_open_fds": "gauge",
        # libp2p's own, under the node's prefix (once, not rusty_libp2p_libp2p_).
        "rusty_libp2p_bandwidth_bytes": "counter",
        "rusty_libp2p_swarm_connections_established": "counter",
        "rusty_libp2p_ping_rtt_seconds": "histogram",
    }
    for name, kind in want.items():
        assert name in families, f"/metrics lacks {name}"
        assert families[name].type == kind, f"{name} is a {families[name].type}, not a {kind}"
    libp2p = [n for n in families if n.startswith("rusty_libp2p_")]
    assert libp2p, "no libp2p metrics"
    for f in families.values():
        assert f.name.startswith("rusty_"), f.name
        for s in f.samples:
            for label in s.labels:
                assert label not in ("peer", "peer_id", "id", "content", "content_id"), (f.name, label)
    height = families["rusty_chain_height"].samples[0].value
    count = rpc("getblockcount")
    assert height == count, f"rusty_chain_height {height} != getblockcount {count}"
    health = rpc("getnodehealth")
    assert health["chain"]["height"] == count, health
    assert health["peers"]["inbound"] + health["peers"]["outbound"] >= 1, health
    log("ok  getnodehealth agrees (chain height, peers)")
    log(f"ok  /metrics parses as OpenMetrics: {len(families)} families ({len(libp2p)} from libp2p), "
        f"types as expected, rusty_chain_height = getblockcount = {count}")


def measure_pages(driver, args, rpc, mine_to):
    height = rpc("getblockcount")
    while height < args.blocks:
        rpc("generatetoaddress", min(1000, args.blocks - height), mine_to)
        height = rpc("getblockcount")
    results = {}
    block = rpc("getblockhash", height // 2)
    pages = {
        "home": "/",
        "block": f"/block/{block}",
        "media": "/media",
        "masternodes": "/masternodes",
        "governance": "/governance",
        "wallet": "/wallet",
    }
    # The yardstick: the same page's API calls, made one after another by a
    # plain HTTP client (what the server costs, without the browser).
    api_calls = {
        "home": ["status", "blocks?count=8", "mempool", "peers"],
        "block": [f"block/{block}"],
        "media": ["media"],
        "masternodes": ["masternodes"],
        "governance": ["governance"],
        "wallet": [],
    }
    api_ms = {}
    for name, paths in api_calls.items():
        if not paths:
            continue
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            for path in paths:
                status, _ = http(f"{args.ui}/api/v1/{path}")
                assert status == 200, (path, status)
            runs.append((time.perf_counter() - t) * 1000)
        api_ms[name] = sorted(runs)[1]
    # The browser's floor: a static text file from the same server, from
    # navigation start to its load event.
    floor = []
    for _ in range(3):
        driver.get("about:blank")
        driver.get(f"{args.ui}/assets/vendor/hls.js.LICENSE")
        floor.append(driver.execute_script(
            "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd || t.duration;"))
    floor_ms = sorted(floor)[1]
    log(f"    a static file: loaded in {floor_ms:.0f} ms (median of 3): the browser's floor")
    for name, path in pages.items():
        samples = []
        for _ in range(3):
            driver.get("about:blank")
            driver.get(f"{args.ui}/#{path}")
            ms = wait(f"{name} to be ready",
                      lambda: driver.execute_script("return document.body.dataset.readyMs"), 30)
            samples.append(float(ms))
        results[name] = sorted(samples)[1]
        api = f", its API calls alone {api_ms[name]:.1f} ms" if name in api_ms else ""
        log(f"    {name}: ready in {results[name]:.0f} ms (median of 3){api}, {height} blocks")
    with open(args.report, "w") as f:
        json.dump({"blocks": height, "ready_ms": results, "api_ms": api_ms, "static_ms": floor_ms}, f, indent=1)
    log(f"ok  page-load times recorded in {args.report}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ui", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--rpc", required=True)
    p.add_argument("--cookie", required=True)
    p.add_argument("--peer-rpc", required=True)
    p.add_argument("--peer-cookie", required=True)
    p.add_argument("--clip", required=True)
    p.add_argument("--live", required=True)
    p.add_argument("--screenshots", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--blocks", type=int, default=10_000)
    args = p.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    rpc = Rpc(args.rpc, args.cookie)
    peer_rpc = Rpc(args.peer_rpc, args.peer_cookie)
    mine_to = rpc("getnewaddress")

    check_security(args)
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            height = check_home_follows_blocks(driver, args, rpc, mine_to)
            check_block_click(driver, args, rpc, height)
            check_media(driver, args)
            check_direct_playback(args, rpc)
            check_wallet(driver, args, rpc, peer_rpc)
            check_pages(driver, args)
            check_metrics(args, rpc)
            # The live broadcast (ffmpeg encoding in real time) would load
            # the machine while pages are timed.
            peer_rpc("stream_broadcast_end", args.live)
            measure_pages(driver, args, rpc, mine_to)
            logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
            for e in logs:
                log(f"    browser console: {e.get('message')}")
        finally:
            driver.quit()
    log("all UI checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAIL {e}", flush=True)
        sys.exit(1)
