#!/usr/bin/env bash
# Eligibility against an HTTP+JSON floor, on pinned cores (issue 9): the server (one
# runtime thread; the ledger's threads inherit the pinning) on core 0, wrk on core 1,
# the same load script for both. The floor (examples/http_floor.rs) checks the token,
# parses the same body into the same struct and answers JSON of the same size; the
# service records every decision in its ledger (a new return of a new buyer each).
# Runs floor, service, floor, service back to back; the ratio uses the mean of each.
# Also the server's CPU per request, from /proc/PID/stat (utime + stime) around each
# run, divided by the requests wrk completed.
# Usage: scripts/bench-floor.sh [SECONDS] [OUT.json]   (defaults 10, target/bench-floor.json)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
OUT=${2:-target/bench-floor.json}
command -v wrk >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet -p fastrefund-service --example http_floor
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$BIN" ] || cargo build --release --quiet
W=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$W"' EXIT
export FASTREFUND_API_TOKEN=bench-api-token FASTREFUND_ADMIN_TOKEN=bench-admin-token FASTREFUND_WORKERS=1
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return; sleep 0.1; done; echo "server on $1 not up"; exit 1; }
sed -e 's/^unknown_buyer_star = .*/unknown_buyer_star = 3/' -e 's/^version = .*/version = "bench"/' config/policy.toml >"$W/policy.toml"
FP=$(free_port); SP=$(free_port)
taskset -c 0 "${CARGO_TARGET_DIR:-target}"/release/examples/http_floor "127.0.0.1:$FP" & pids+=($!); FLOOR=$!
taskset -c 0 "$BIN" serve --policy "$W/policy.toml" --ledger "$W/ledger.sqlite" --addr "127.0.0.1:$SP" >"$W/serve.log" 2>&1 & pids+=($!); SERVE=$!
wait_up "$FP"; wait_up "$SP"
until curl -sf "http://127.0.0.1:$SP/readyz" >/dev/null; do sleep 0.1; done
cat >"$W/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-api-token"
local thread_no = 0
function setup(thread) thread_no = thread_no + 1; thread:set("base", os.time() * 1000000 + thread_no * 100000000) end
local n = 0
function request()
  n = n + 1
  local id = base + n
  return wrk.format(nil, "/v1/eligibility", nil, string.format('{"return_id":%d,"buyer_id":%d,"order_id":%d,"merchant_id":1,"category":"shoes","amount":"59.90","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}', id, id, id))
end
LUA
run() { # port pid -> "rps cpu_us_per_request"
  local t0 t1 out rps reqs
  t0=$(cpu_ticks "$2")
  out=$(taskset -c 1 wrk -t1 -c16 -d"${SECS}s" -s "$W/post.lua" "http://127.0.0.1:$1/v1/eligibility")
  t1=$(cpu_ticks "$2")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $(python3 -c "print(round(($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / $reqs, 2))")"
}
read -r f1 fc1 < <(run "$FP" "$FLOOR")
read -r e1 ec1 < <(run "$SP" "$SERVE")
read -r f2 fc2 < <(run "$FP" "$FLOOR")
read -r e2 ec2 < <(run "$SP" "$SERVE")
fsize=$(curl -s -H "Authorization: Bearer $FASTREFUND_API_TOKEN" -H 'content-type: application/json' "http://127.0.0.1:$FP/v1/eligibility" -d '{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"59.90","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}' | wc -c)
esize=$(curl -s -H "Authorization: Bearer $FASTREFUND_API_TOKEN" -H 'content-type: application/json' "http://127.0.0.1:$SP/v1/eligibility" -d '{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"59.90","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}' | wc -c)
decisions=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$W/ledger.sqlite?mode=ro', uri=True).execute('SELECT COUNT(*) FROM decisions').fetchone()[0])")
mkdir -p "$(dirname "$OUT")"
python3 - "$OUT" <<PY
import json, sys
f, e = [$f1, $f2], [$e1, $e2]
r = {"date": "$(date +%F)", "seconds_per_run": $SECS, "pinning": "server on core 0 (1 runtime thread), wrk on core 1 (1 thread, 16 connections)",
     "floor_rps": f, "eligibility_rps": e, "eligibility_over_floor": round(sum(e) / sum(f), 3),
     "server_cpu_us_per_request": {"floor": [$fc1, $fc2], "eligibility": [$ec1, $ec2]},
     "answer_bytes": {"floor": $fsize, "eligibility": $esize}, "decisions_recorded": $decisions}
json.dump(r, open(sys.argv[1], "w"), indent=2); print(json.dumps(r, indent=2))
PY
