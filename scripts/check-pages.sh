#!/usr/bin/env bash
# The buyer's page, opened in a real headless Chromium through a signed link as a
# buyer would: it must render the star, the benefits and the reasons, and leave a
# screenshot in target/pages/ for a person to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/serve-bg.sh
mkdir -p target/pages
check() { # buyer-star expected-text
  local buyer=$1 expect=$2
  local url
  url=$(curl -sf -X POST -H "Authorization: Bearer $FASTREFUND_API_TOKEN" "$BASE/v1/buyers/$buyer/link" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
  local flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
    --disable-component-update --disable-sync --user-data-dir="$WORK/chrome-$buyer")
  chromium "${flags[@]}" --dump-dom "$BASE$url" 2>/dev/null >"$WORK/page-$buyer.html"
  for want in "$expect" "What your rating gives you" "What lowers your rating" "Raising your rating"; do
    grep -q "$want" "$WORK/page-$buyer.html" || { echo "buyer $buyer: the page lacks \"$want\""; head -c 2000 "$WORK/page-$buyer.html"; exit 1; }
  done
  chromium "${flags[@]}" --window-size=720,1400 --screenshot="target/pages/buyer-$buyer.png" "$BASE$url" >/dev/null 2>&1
  [ -s "target/pages/buyer-$buyer.png" ] || { echo "no screenshot for buyer $buyer"; exit 1; }
  # Without the link the page is closed.
  code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/buyers/$buyer")
  [ "$code" = 401 ] || { echo "buyer $buyer: page open without a link ($code)"; exit 1; }
  echo "buyer $buyer: page rendered in Chromium (target/pages/buyer-$buyer.png)"
}
pick() { python3 - "$1" <<'PY'
import json, subprocess, sys
# the first buyer of the embedded sample with this star, found through the API
import urllib.request, os
base, tok, star = os.environ["BASE"], os.environ["FASTREFUND_API_TOKEN"], int(sys.argv[1])
for b in range(100001, 102001):
    req = urllib.request.Request(f"{base}/v1/buyers/{b}/rating", headers={"Authorization": f"Bearer {tok}"})
    try:
        if json.load(urllib.request.urlopen(req))["star"] == star:
            print(b); break
    except Exception:
        pass
PY
}
export BASE
check "$(pick 5)" "5 of 5 stars"
check "$(pick 2)" "2 of 5 stars"

# The reviewers' pages (spec §10), in Chromium through a loopback proxy that adds the
# reviewer token (a browser on the command line sends no Authorization header, as a
# reviewer's single-sign-on proxy would): a buyer contests a loss, and the queue and the
# case page must show it, in English and in Chinese, with their security headers.
python3 - <<'PY'
import json, os, urllib.request
base, tok = os.environ["BASE"], os.environ["FASTREFUND_API_TOKEN"]
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
buyer = next(b for b in range(100001, 102001) if call("GET", f"/v1/buyers/{b}/rating")["star"] >= 4)
call("POST", "/v1/eligibility", dict(return_id=71, buyer_id=buyer, order_id=71, merchant_id=1, category="shoes", amount="80.00",
     reason="no_reason", delivered_at="2026-06-30T02:00:00Z", requested_at="2026-07-01T02:00:00Z", tracking_number="SFPAGE71"))
call("POST", "/v1/returns/71/outcome", dict(outcome="received_mismatch", at="2026-07-05T00:00:00Z"))
case = call("POST", "/v1/cases", dict(kind="outcome", buyer_id=buyer, return_id=71, opened_by="buyer",
            statement="The parcel left sealed; the courier's photo shows the sealed box.", evidence=["https://photos.example/71.jpg"]))
print(case["case_id"])
PY
PROXY_PORT=$(free_port)
python3 - "$PROXY_PORT" "$BASE" "$FASTREFUND_REVIEWER_TOKEN" >"$WORK/proxy.log" 2>&1 <<'PY' &
import sys, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, base, tok = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Proxy(BaseHTTPRequestHandler):
    def do_GET(self):
        req = urllib.request.Request(base + self.path, headers={"Authorization": f"Bearer {tok}",
                                     "Accept-Language": self.headers.get("Accept-Language", "en")})
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read()
        self.send_response(r.status)
        for k, v in r.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
PY
PROXY_PID=$!
trap 'kill $SERVER_PID $PROXY_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 50); do curl -sf "127.0.0.1:$PROXY_PORT/review" >/dev/null && break; sleep 0.1; done
review() { # path lang expected-text file
  local flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
    --disable-component-update --disable-sync --lang="$2" --accept-lang="$2" --user-data-dir="$WORK/chrome-review-$2")
  chromium "${flags[@]}" --dump-dom "http://127.0.0.1:$PROXY_PORT$1" 2>/dev/null >"$WORK/review.html"
  grep -q "$3" "$WORK/review.html" || { echo "$1 ($2): the page lacks \"$3\""; head -c 2000 "$WORK/review.html"; exit 1; }
  chromium "${flags[@]}" --window-size=1000,900 --screenshot="target/pages/$4.png" "http://127.0.0.1:$PROXY_PORT$1" >/dev/null 2>&1
  [ -s "target/pages/$4.png" ] || { echo "no screenshot of $1"; exit 1; }
  echo "$1 ($2): rendered in Chromium (target/pages/$4.png)"
}
review /review en "Cases to review" review-queue-en
review /review zh-CN "待审核的申诉" review-queue-zh
review /review/cases/1/page en "photo shows the sealed box" review-case-en
review /review/cases/1/page zh-CN "处理记录" review-case-zh
headers=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $FASTREFUND_REVIEWER_TOKEN" "$BASE/review")
for want in "content-security-policy: default-src 'none'" "x-content-type-options: nosniff" "referrer-policy: no-referrer"; do
  grep -qi "$want" <<<"$headers" || { echo "/review lacks the header \"$want\""; exit 1; }
done
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $FASTREFUND_API_TOKEN" "$BASE/review")
[ "$code" = 403 ] || { echo "the API token opens the reviewers' page ($code)"; exit 1; }
echo "the reviewers' pages: rendered, headers set, closed to the API token"
