#!/usr/bin/env bash
# Eligibility against /healthz, unpinned, measured the way the `eligibility-service`
# acceptance check measures it (issue 11): one server with 2 runtime threads sharing
# both cores with wrk (1 thread, 16 connections); /healthz first, then eligibility for
# one rated buyer (4 or 5 stars) with a new random return id on every request, seeded
# anew on every run (`rated_buyer_lua` in wrk-lua.sh). Several builds are measured in
# turns, a fresh server and ledger for each measurement, ROUNDS times.
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
scripts/venv.sh scripts/requirements-bench.txt target/bench-venv >&2
PY=target/bench-venv/bin/python
# A buyer rated 4 or 5 stars in the snapshot.
BUYER=$("$PY" -c "import pyarrow.parquet as pq, pyarrow.compute as pc, sys
t = pq.read_table(sys.argv[1] + '/ratings.parquet', columns=['buyer_id', 'star'])
print(t.filter(pc.greater_equal(t['star'], 4))['buyer_id'][0])" "$SNAPSHOT")
command -v wrk >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq wrk >/dev/null; }
W=$(mktemp -d)
SERVE=
trap '[ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null; rm -rf "$W"' EXIT
export FASTREFUND_API_TOKEN=bench-api-token FASTREFUND_ADMIN_TOKEN=bench-admin-token
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
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

# shellcheck source=wrk-lua.sh
source scripts/wrk-lua.sh
rated_buyer_lua "$BUYER" >"$W/post.lua"

: >"$W/rows"
for round in $(seq "$ROUNDS"); do
  for spec in "$@"; do
    name=${spec%%=*} rest=${spec#*=}
    IFS=, read -r -a parts <<<"$rest"
    start "${parts[@]}"
    h=$(wrk -t1 -c16 -d"${SECS}s" "http://127.0.0.1:$PORT/healthz" | awk '/Requests\/sec/ {print $2}')
    read -r b0 t0 < <(busy)
    c0=$(cpu_ticks "$SERVE")
    out=$(wrk -t1 -c16 -d"${SECS}s" -s "$W/post.lua" "http://127.0.0.1:$PORT/v1/eligibility")
    c1=$(cpu_ticks "$SERVE")
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
