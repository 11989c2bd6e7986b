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
