"""Soak: mixed traffic against a running `fastrefund serve` for a while (default 10
minutes), then checks what must hold after it. Not run in CI (it takes minutes).

Traffic, from several threads at once:
- every endpoint: eligibility (new returns, retries of recorded ones, and return ids
  reused for another request), tracking numbers, outcomes, exposure, rating, buyer
  links and pages, health, readiness, metrics;
- about 5% of requests cancelled mid-flight (the socket reset right after sending);
- slow clients (a request head sent a byte at a time);
- bad input (malformed JSON, bad amounts, unknown fields, made-up methods and paths);
- a snapshot reload every minute (admin).

Then it checks: no 5xx answered; the server's RSS flat within 10% after warm-up; the
number of metric series flat after warm-up; every acknowledged advance in the ledger,
each once. Prints its figures as JSON (for docs/benchmarks.md) and exits 1 if a check
fails.

Usage: soak.py BASE_URL SERVER_PID LEDGER_PATH [SECONDS]
Tokens from FASTREFUND_API_TOKEN and FASTREFUND_ADMIN_TOKEN.
"""

import json
import os
import random
import socket
import sqlite3
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

BASE, PID, LEDGER = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SECONDS = int(sys.argv[4]) if len(sys.argv) > 4 else 600
WARMUP = min(120, SECONDS // 5)
API = os.environ["FASTREFUND_API_TOKEN"]
ADMIN = os.environ["FASTREFUND_ADMIN_TOKEN"]
HOST, PORT = BASE.removeprefix("http://").split(":")
PORT = int(PORT)

lock = threading.Lock()
statuses = Counter()
five_xx = []
acked_advances = set()
decided = {}  # return_id -> request body
stop = time.monotonic() + SECONDS
next_id = [1_000_000]


def new_id():
    with lock:
        next_id[0] += 1
        return next_id[0]


def call(method, path, body=None, token=API, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as e:
        status, text = 0, str(e).encode()
    with lock:
        statuses[status] += 1
        if status >= 500:
            five_xx.append((method, path, status, text[:200]))
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, None


def eligibility_body(rid, buyer):
    return {
        "return_id": rid, "buyer_id": buyer, "order_id": rid, "merchant_id": 1,
        "category": "shoes", "amount": random.choice(["19.90", "59.90", "129.00"]),
        "reason": "no_reason", "delivered_at": "2026-06-30T02:00:00Z",
        "requested_at": "2026-07-01T02:00:00Z",
    }


def cancelled(body):
    """Sends a whole eligibility request and resets the connection at once."""
    b = json.dumps(body).encode()
    head = (f"POST /v1/eligibility HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode()
    try:
        s = socket.create_connection((HOST, PORT), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(head + b)
        s.close()
        with lock:
            statuses["cancelled"] += 1
    except OSError:
        pass


def slow_client():
    """A request head sent a byte every 50 ms: answered or closed, never a hang."""
    try:
        s = socket.create_connection((HOST, PORT), timeout=30)
        for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n":
            s.send(bytes([ch]))
            time.sleep(0.05)
        s.recv(100)
        s.close()
        with lock:
            statuses["slow"] += 1
    except OSError:
        pass


def worker(buyers):
    while time.monotonic() < stop:
        r = random.random()
        if r < 0.30:
            rid, buyer = new_id(), random.choice(buyers)
            body = eligibility_body(rid, buyer)
            if random.random() < 0.05:
                cancelled(body)
                continue
            status, _ = call("POST", "/v1/eligibility", body)
            if status == 200:
                with lock:
                    decided[rid] = body
        elif r < 0.50:
            with lock:
                rid = random.choice(list(decided)) if decided else None
            if rid is None:
                continue
            status, t = call("POST", f"/v1/returns/{rid}/tracking", {"tracking_number": f"SF{rid}"})
            if status == 200 and t and t.get("advanced"):
                with lock:
                    acked_advances.add(rid)
        elif r < 0.58:
            with lock:
                rid = random.choice(list(acked_advances)) if acked_advances else None
            if rid is None:
                continue
            call("POST", f"/v1/returns/{rid}/outcome",
                 {"outcome": random.choice(["received_ok", "merchant_fault"]), "at": "2026-07-05T02:00:00Z"})
        elif r < 0.62:
            with lock:
                rid = random.choice(list(decided)) if decided else None
                body = dict(decided[rid]) if rid else None
            if body:
                if random.random() < 0.5:
                    call("POST", "/v1/eligibility", body)  # a retry: the recorded answer
                else:
                    body["amount"] = "1.00"
                    call("POST", "/v1/eligibility", body)  # reused for another request: 409
        elif r < 0.72:
            call("GET", f"/v1/buyers/{random.choice(buyers)}/exposure")
        elif r < 0.80:
            call("GET", f"/v1/buyers/{random.choice(buyers)}/rating")
        elif r < 0.83:
            status, link = call("POST", f"/v1/buyers/{random.choice(buyers)}/link")
            if status == 200 and link:
                call("GET", link["url"].removeprefix(BASE), token=None)
        elif r < 0.88:
            call("GET", random.choice(["/healthz", "/readyz", "/metrics"]), token=None)
        elif r < 0.99:
            bad = random.choice([
                ("POST", "/v1/eligibility", b"{not json"),
                ("POST", "/v1/eligibility", json.dumps({**eligibility_body(new_id(), 1), "amount": "-0"}).encode()),
                ("POST", "/v1/eligibility", json.dumps({**eligibility_body(new_id(), 1), "extra": 1}).encode()),
                ("POST", "/v1/returns/x/tracking", b"{}"),
                (f"M{random.randint(0, 10**6)}", "/healthz", None),
                ("GET", f"/nowhere/{random.randint(0, 10**9)}", None),
            ])
            call(bad[0], bad[1], raw=bad[2])
        else:
            slow_client()


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def series():
    with urllib.request.urlopen(BASE + "/metrics", timeout=10) as r:
        return sum(1 for l in r.read().decode().splitlines() if l and not l.startswith("#"))


def sampler(samples):
    started = time.monotonic()
    last_reload = started
    while time.monotonic() < stop:
        samples.append((time.monotonic() - started, rss_kib(), series()))
        if time.monotonic() - last_reload >= 60:
            last_reload = time.monotonic()
            status, _ = call("POST", "/admin/reload", token=ADMIN, raw=b"")
            with lock:
                statuses[f"reload {status}"] += 1
        time.sleep(5)


def main():
    buyers = []
    # Buyers of the snapshot in service, so that ratings and pages answer 200.
    for b in range(100001, 100400):
        buyers.append(b)
    samples = []
    threads = [threading.Thread(target=worker, args=(buyers,)) for _ in range(8)]
    threads.append(threading.Thread(target=sampler, args=(samples,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = [s for s in samples if s[0] >= WARMUP]
    rss = [s[1] for s in after]
    ser = [s[2] for s in after]
    con = sqlite3.connect(f"file:{LEDGER}?mode=ro", uri=True)
    stored = Counter(r[0] for r in con.execute("SELECT return_id FROM advances"))
    missing = [rid for rid in acked_advances if stored.get(rid, 0) != 1]
    total = sum(v for k, v in statuses.items() if isinstance(k, int))
    report = {
        "seconds": SECONDS, "warmup_seconds": WARMUP, "requests": total,
        "requests_per_second": round(total / SECONDS, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "five_xx": len(five_xx),
        "rss_kib_after_warmup": {"min": min(rss), "max": max(rss)} if rss else None,
        "rss_growth": round(max(rss) / min(rss) - 1, 4) if rss else None,
        "rss_mib_each_minute": [round(s[1] / 1024, 1) for s in samples if int(s[0]) % 60 < 5],
        "metric_series_after_warmup": {"min": min(ser), "max": max(ser)} if ser else None,
        "acknowledged_advances": len(acked_advances),
        "advances_missing_or_doubled": len(missing),
    }
    print(json.dumps(report, indent=2))
    failed = []
    if five_xx:
        failed.append(f"{len(five_xx)} 5xx answers, e.g. {five_xx[:3]}")
    if rss and max(rss) > 1.10 * min(rss):
        failed.append(f"RSS grew {report['rss_growth']:.1%} after warm-up")
    if ser and max(ser) != min(ser):
        failed.append(f"metric series went from {min(ser)} to {max(ser)} after warm-up")
    if missing:
        failed.append(f"{len(missing)} acknowledged advances missing or doubled, e.g. {missing[:5]}")
    for f in failed:
        print("FAILED:", f)
    sys.exit(1 if failed else 0)


main()
