#!/usr/bin/env bash
# What opening and holding a big ledger costs: a ledger of N decided returns (default
# 10,000,000; a fifth of them advanced, three quarters of those settled) is written
# straight into SQLite with the service's own schema, then `fastrefund serve` is
# started on it and on an empty ledger, in the same run: seconds until /readyz answers
# 200, and the server's RSS once ready (/proc/PID/status VmRSS).
# Usage: scripts/bench-ledger-open.sh [N] [OUT.json]   (defaults 10000000, target/bench-ledger-open.json)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
OUT=${2:-target/bench-ledger-open.json}
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$BIN" ] || cargo build --release -p fastrefund
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export FASTREFUND_API_TOKEN=bench-api-token FASTREFUND_ADMIN_TOKEN=bench-admin-token

# Seconds to ready and RSS (KiB) of `serve` on ledger $1.
measure() {
  local port pid t0 t1 rss
  port=$(free_port)
  t0=$(date +%s.%N)
  "$BIN" serve --ledger "$1" --addr "127.0.0.1:$port" >"$W/serve.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 $pid 2>/dev/null || { cat "$W/serve.log"; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  kill $pid; wait $pid 2>/dev/null || true
  echo "$(python3 -c "print(round($t1 - $t0, 2))") $rss"
}

# The schema, made by the service itself.
read -r _ _ < <(measure "$W/empty.sqlite")
cp "$W/empty.sqlite" "$W/big.sqlite"
python3 - "$W/big.sqlite" "$N" <<'PY'
import sqlite3, sys, time
path, n = sys.argv[1], int(sys.argv[2])
t = time.time()
c = sqlite3.connect(path)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=OFF")
c.execute("INSERT OR IGNORE INTO versions (id, text) VALUES (1, 'policy'), (2, 'model')")
base = 1_780_000_000_000_000
def decisions():
    for i in range(1, n + 1):
        yield (i, base + i, i % 3_000_000, i, 1, "shoes", "59.90", "no_reason", base, base, base,
               4, 1, 1, 1, i % 5 == 0, None, None, 1, 2, "[]", None, f"SF{i}" if i % 5 == 0 else None)
c.executemany("""INSERT INTO decisions (return_id, decision_id, buyer_id, order_id, merchant_id, category,
  amount, reason, delivered_at, requested_at, decided_at, star, rated, instant, pickup, advanced, pickup_from,
  merchant_answer_by, policy_version, model_version, reasons, shadow, tracking_number)
  VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""", decisions())
c.executemany("""INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at,
  advanced_at, local_date) VALUES (?,?,?,?,?,?,?,?)""",
  ((i, i % 3_000_000, i, "59.90", f"SF{i}", base, base, "2026-07-01") for i in range(5, n + 1, 5)))
c.executemany("""INSERT INTO outcomes (return_id, outcome, outcome_at, recorded_at) VALUES (?,?,?,?)""",
  ((i, "received_ok" if i % 100 else "not_shipped", base, base) for i in range(5, n + 1, 5) if i % 20))
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(f"wrote {n} decisions in {time.time() - t:.0f} s", file=sys.stderr)
PY
read -r empty_s empty_rss < <(measure "$W/empty.sqlite")
read -r big_s big_rss < <(measure "$W/big.sqlite")
size=$(du -k "$W/big.sqlite" | cut -f1)
mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<JSON
{"decided_returns": $N, "ledger_mib": $((size / 1024)),
 "empty": {"seconds_to_ready": $empty_s, "rss_kib": $empty_rss},
 "big": {"seconds_to_ready": $big_s, "rss_kib": $big_rss}}
JSON
cat "$OUT"
