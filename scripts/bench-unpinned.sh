#!/usr/bin/env bash
# Eligibility against /healthz, unpinned, measured the way the `eligibility-service`
# acceptance check measures it (issue 11): one server with 2 runtime threads sharing
# both cores with wrk (1 thread, 16 connections); /healthz first, then eligibility for
# one rated buyer (4 or 5 stars) with a new random return id on every request. Each
# eligibility run seeds wrk's random numbers anew, so no run repeats another's return
# ids (wrk's Lua starts from the same seed each time otherwise, and a repeat is an
# idempotent replay, not a new decision). Several builds are measured in turns, a fresh
# server and ledger for each measurement, ROUNDS times.
# Also, around each eligibility run: the server's CPU per request (/proc/PID/stat) and
# how busy the whole machine was (/proc/stat).
# The snapshot is SNAPSHOT (default: data/snapshot, the shipped sample); the buyer is
# read from its ratings with pyarrow (the bench venv, scripts/requirements-bench.txt).
# Usage: scripts/bench-unpinned.sh SECONDS ROUNDS OUT.json NAME=BIN[,VAR=VALUE...] ...
#   e.g. scripts/bench-unpinned.sh 5 2 target/unpinned.json main=target/release/fastrefund
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=$1 ROUNDS=$2 OUT=$3
shift 3
SNAPSHOT=${SNAPSHOT:-data/snapshot}
PY=${BENCH_PYTHON:-target/bench-venv/bin/python}
[ -x "$PY" ] || { python3 -m venv target/bench-venv && target/bench-venv/bin/pip install -q -r scripts/requirements-bench.txt; }
# A buyer rated 4 or 5 stars in the snapshot.
BUYER=$("$PY" -c "import pyarrow.parquet as pq, pyarrow.compute as pc, sys
t = pq.read_table(sys.argv[1] + '/ratings.parquet', columns=['buyer_id', 'star'])
print(t.filter(pc.greater_equal(t['star'], 4))['buyer_id'][0])" "$SNAPSHOT")
command -v wrk >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq wrk >/dev/null; }
W=$(mktemp -d)
SERVE=
trap '[ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null; rm -rf "$W"' EXIT
export FASTREFUND_API_TOKEN=bench-api-token FASTREFUND_ADMIN_TOKEN=bench-admin-token
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

start() { # BIN ENV...: sets PORT and SERVE
  local bin=$1
  shift
  PORT=$(free_port)
  rm -f "$W"/ledger.sqlite*
  env "$@" "$bin" serve --snapshot "$SNAPSHOT" --ledger "$W/ledger.sqlite" --addr "127.0.0.1:$PORT" >"$W/serve.log" 2>&1 &
  SERVE=$!
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
    kill -0 "$SERVE" 2>/dev/null || { cat "$W/serve.log"; exit 1; }
    sleep 0.1
  done
}
stop() { kill "$SERVE"; wait "$SERVE" 2>/dev/null || true; SERVE=; }

cat >"$W/post.lua" <<LUA
math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-api-token"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"return_id":%d,"buyer_id":$BUYER,"order_id":%d,"merchant_id":1,"category":"shoes","amount":"59.90","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}', math.random(1,1000000000) * 1000 + counter % 1000, counter)
  return wrk.format(nil, "/v1/eligibility", nil, body)
end
LUA

: >"$W/rows"
for round in $(seq "$ROUNDS"); do
  for spec in "$@"; do
    name=${spec%%=*} rest=${spec#*=}
    IFS=, read -r -a parts <<<"$rest"
    start "${parts[@]}"
    h=$(wrk -t1 -c16 -d"${SECS}s" "http://127.0.0.1:$PORT/healthz" | awk '/Requests\/sec/ {print $2}')
    read -r b0 t0 < <(busy)
    c0=$(ticks "$SERVE")
    out=$(wrk -t1 -c16 -d"${SECS}s" -s "$W/post.lua" "http://127.0.0.1:$PORT/v1/eligibility")
    c1=$(ticks "$SERVE")
    read -r b1 t1 < <(busy)
    stop
    e=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    echo "$round $name $h $e $reqs $((c1 - c0)) $((b1 - b0)) $((t1 - t0))" | tee -a "$W/rows"
  done
done

mkdir -p "$(dirname "$OUT")"
python3 - "$OUT" "$W/rows" "$(getconf CLK_TCK)" "$SECS" <<'PY'
import json, sys
out, rows, hz, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
runs = {}
for line in open(rows):
    rnd, name, h, e, reqs, ticks, busy, total = line.split()
    r = runs.setdefault(name, {"healthz_rps": [], "eligibility_rps": [], "ratio": [],
                               "server_cpu_us_per_request": [], "machine_busy": []})
    r["healthz_rps"].append(round(float(h)))
    r["eligibility_rps"].append(round(float(e)))
    r["ratio"].append(round(float(e) / float(h), 3))
    r["server_cpu_us_per_request"].append(round(int(ticks) * 1e6 / hz / int(reqs), 1))
    r["machine_busy"].append(round(int(busy) / int(total), 2))
report = {"seconds_per_run": secs, "load": "wrk -t1 -c16, unpinned, as the eligibility-service check",
          "builds": runs}
json.dump(report, open(out, "w"), indent=2)
for name, r in runs.items():
    print(f"{name:12s} ratio {r['ratio']}  eligibility {r['eligibility_rps']}  healthz {r['healthz_rps']}  "
          f"cpu us/req {r['server_cpu_us_per_request']}")
PY
