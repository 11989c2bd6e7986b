#!/usr/bin/env bash
# Soak test (not in CI: it takes SECONDS, default 600): starts the release service on the
# shipped sample with a fresh ledger and drives mixed traffic at it with
# scripts/soak.py (every endpoint, ~5% of requests cancelled mid-flight, slow clients,
# bad input, a reload every minute), then checks: no 5xx, RSS flat within 10% after
# warm-up, the metric series count flat, every acknowledged advance in the ledger once.
# Usage: scripts/soak.sh [SECONDS] [OUT.json]   (defaults 600, target/soak.json)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
OUT=${2:-target/soak.json}
export FASTREFUND_BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$FASTREFUND_BIN" ] || cargo build --release -p fastrefund
set -- # serve-bg.sh passes its arguments to `serve`
# shellcheck source=serve-bg.sh
source scripts/serve-bg.sh
mkdir -p "$(dirname "$OUT")"
python3 scripts/soak.py "$BASE" "$SERVER_PID" "$WORK/ledger.sqlite" "$SECS" | tee "$OUT"
