#!/usr/bin/env bash
# HTTP benchmarks of the running service, with wrk (Debian's package; installed here if
# missing), all in one run so that the ratios compare like with like:
#
#  1. /healthz at full load (the baseline: routing, auth-free, no work);
#  2. POST /v1/eligibility at full load, every request a new return of a new buyer, so
#     every decision is recorded in the ledger (durable: acknowledged after its commit);
#  3. POST /v1/eligibility at about half of (2)'s rate (wrk's per-connection delay()),
#     for the p99 latency at half load;
#  4. durable advances: each wrk connection asks eligibility for a new return and then
#     posts its tracking number, so every second request advances a refund; the
#     advance is acknowledged only after the ledger's fdatasync. The count of advances
#     is read back from /metrics and checked against the ledger export.
#
# Usage: scripts/bench-http.sh [SECONDS] [OUT.json]   (defaults 10, target/bench-http.json)
# Uses $FASTREFUND_BIN (default target/release/fastrefund, built if
# missing). The server and wrk share the machine's cores: the ratios are what this
# machine gives, not what a separate load host would.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
OUT=${2:-target/bench-http.json}
command -v wrk >/dev/null || { sudo apt-get install -y -qq wrk >/dev/null 2>&1 || apt-get install -y -qq wrk; }
export FASTREFUND_BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$FASTREFUND_BIN" ] || cargo build --release -p fastrefund
BIN=$FASTREFUND_BIN
# The shipped policy, but buyers the snapshot does not know get 3 stars (the default
# gives them 2, which the programme refuses): every request is then a new buyer who
# qualifies, so each eligibility is recorded and each tracking number advances.
POLICY=$(mktemp)
sed -e 's/^unknown_buyer_star = .*/unknown_buyer_star = 3/' -e 's/^version = .*/version = "bench"/' config/policy.toml >"$POLICY"
grep -q '^unknown_buyer_star = 3' "$POLICY"
set -- --policy "$POLICY" # serve-bg.sh passes its arguments to `serve`
# shellcheck source=serve-bg.sh
source scripts/serve-bg.sh
LUA=$WORK/lua
mkdir -p "$LUA"

# shellcheck source=wrk-lua.sh
source scripts/wrk-lua.sh
eligibility_lua 0 >"$LUA/eligibility.lua"
advance_lua 5000000000 >"$LUA/advance.lua"

run_wrk() { # name, wrk args... ; prints the wrk output into $WORK/name.txt
  local name=$1
  shift
  wrk "$@" >"$WORK/$name.txt" 2>&1
  cat "$WORK/$name.txt" >&2
}
rps() { awk '/Requests\/sec/ {print $2}' "$WORK/$1.txt"; }
p99() { # in ms
  awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$WORK/$1.txt"
}
errors() { awk '/Non-2xx|Socket errors/ {print}' "$WORK/$1.txt"; }
advances() {
  curl -sf "$BASE/metrics" | awk '/^fastrefund_advances_total/ {print $2}'
}

echo "warming up" >&2
wrk -t1 -c8 -d2s "$BASE/healthz" >/dev/null
WRK_DELAY_MS=0 wrk -t1 -c8 -d2s -s "$LUA/eligibility.lua" "$BASE" >/dev/null

run_wrk healthz -t1 -c16 -d"${SECS}s" --latency "$BASE/healthz"
WRK_DELAY_MS=0 run_wrk eligibility -t1 -c16 -d"${SECS}s" --latency -s "$LUA/eligibility.lua" "$BASE"
H=$(rps healthz)
E=$(rps eligibility)

# Half load: wrk paces each connection with a 1 ms pause after every response, so the
# rate is about connections / (1 ms + latency). A 2-second calibration run measures
# that, and the real run uses the connections that give half of the full-load rate.
HALF=$(python3 -c "print($E/2)")
C1=$(python3 -c "print(max(1, round($E/2 * 0.002)))")
WRK_DELAY_MS=1 run_wrk calibrate -t1 -c"$C1" -d2s -s "$LUA/eligibility.lua" "$BASE"
CONNS=$(python3 -c "print(max(1, round($C1 * $HALF / $(rps calibrate))))")
WRK_DELAY_MS=1 run_wrk half -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$LUA/eligibility.lua" "$BASE"

before=$(advances)
run_wrk advance -t16 -c16 -d"${SECS}s" --latency -s "$LUA/advance.lua" "$BASE"
after=$(advances)
ADV=$(python3 -c "print(($after - ${before:-0}) / $SECS)")
# Every advance the metrics counted is in the ledger, once.
"$BIN" export-outcomes --ledger "$WORK/ledger.sqlite" --out "$WORK/outcomes.csv" 2>/dev/null
IN_LEDGER=$(python3 -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(sum(r['advanced'] == 'true' for r in rows))" "$WORK/outcomes.csv")
[ "$IN_LEDGER" = "${after%.*}" ] || { echo "metrics count $after advances, the ledger $IN_LEDGER" >&2; exit 1; }

python3 - "$OUT" "$H" "$E" "$(rps half)" "$(p99 half)" "$(p99 eligibility)" "$ADV" "$HALF" "$CONNS" "$(rps advance)" "$(nproc)" "$SECS" <<'EOF'
import json, sys, datetime, platform
out, h, e, half, p99half, p99full, adv, target, conns, advreq, cores, secs = sys.argv[1:]
r = {
    "date": datetime.date.today().isoformat(),
    "machine": f"{platform.node()} ({cores} cores)",
    "seconds_per_run": int(secs),
    "healthz_rps": float(h),
    "eligibility_rps": float(e),
    "eligibility_over_healthz": float(e) / float(h),
    "eligibility_p99_ms_full_load": float(p99full),
    "half_load_target_rps": float(target),
    "half_load_connections": int(conns),
    "half_load_rps": float(half),
    "half_load_p99_ms": float(p99half),
    "durable_advances_per_s": float(adv),
    "advance_run_requests_per_s": float(advreq),
}
json.dump(r, open(out, "w"), indent=2)
print(json.dumps(r, indent=2))
EOF
for f in healthz eligibility half advance; do
  e=$(errors $f)
  [ -z "$e" ] || { echo "errors in the $f run: $e" >&2; exit 1; }
done
