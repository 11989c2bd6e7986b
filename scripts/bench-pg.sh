#!/usr/bin/env bash
# Durable advances per second with 1, 2 and 4 service replicas on one PostgreSQL (fsync
# on, synchronous_commit on), and beside them, in the same run, pgbench on the same
# server: once on the smallest statements that could do an advance's job (written from
# the schema, without our locks and reads: the database's own limit here), once on the
# statements the replicas send (pipelined as they send them).
#
# An advance is two commands, as in the service: wrk's connections ask eligibility for a
# new return of a new buyer, then post its tracking number (advanced). 16 connections in
# all, spread over the replicas. The advances the replicas counted are checked against
# the ledger's own rows. Then, with 2 replicas, the eligibility p99 at about half of the
# full rate.
#
# Usage: scripts/bench-pg.sh [SECONDS] [OUT.json]   (defaults 10, target/bench-pg.json)
#   FASTREFUND_BIN   the server: target/release/fastrefund-serve (built if missing), or a
#                    `fastrefund` binary (then run as `fastrefund serve`)
#   BASELINE_BIN     optional: another build, measured the same way in the same run,
#                    right after each of this build's rounds (the ratio is per round)
#   REPLICAS         the replica counts (default "1 2 4")
#   REPLICA_WORKERS  "share": each replica runs cores/N worker threads (default: one per core)
# Starts and stops its own throwaway PostgreSQL (scripts/pg-test-server.sh). Everything
# shares the machine's cores: PostgreSQL, the replicas, wrk and pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
SECS=${1:-10}
OUT=${2:-target/bench-pg.json}
REPLICAS=${REPLICAS:-1 2 4}
mkdir -p "$(dirname "$OUT")"
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund-serve}
[ -x "$BIN" ] || cargo build --release -p fastrefund-service
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
eval "$(scripts/pg-test-server.sh start)"
W=$(mktemp -d)
pids=()
cleanup() {
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  scripts/pg-test-server.sh stop "$FASTREFUND_TEST_PG_DIR"
  rm -rf "$W"
}
trap cleanup EXIT
BASEURL=${FASTREFUND_TEST_PG%/postgres}
# The shipped policy without its [cases] table (the last), which a baseline build from
# before cases would refuse; cases play no part in an advance.
sed -e 's/^unknown_buyer_star = .*/unknown_buyer_star = 3/' -e 's/^version = .*/version = "bench"/' \
  -e '/^\[cases\]/,$d' config/policy.toml >"$W/policy.toml"
export FASTREFUND_API_TOKEN=bench-api-token FASTREFUND_ADMIN_TOKEN=bench-admin-token RUST_LOG=warn
# shellcheck source=wrk-lua.sh
source scripts/wrk-lua.sh
count() { curl -sf "127.0.0.1:$1/metrics" | awk '/^fastrefund_advances_total/ {print $2}'; }
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
db=0

# start_replicas BIN N LEDGER: starts N replicas of BIN on LEDGER; sets ports. With
# REPLICA_WORKERS=share each replica gets its share of the machine's cores as worker
# threads (at least one), as a replica gets its CPU quota in a cluster: N replicas on
# one machine then run as many runtime threads as one replica would. Otherwise each
# takes the service's default (one per core).
start_replicas() {
  local bin=$1 n=$2 ledger=$3 sub=() port i workers
  [[ $(basename "$bin") == *-serve ]] || sub=(serve)
  workers=$(nproc)
  if [ "${REPLICA_WORKERS:-}" = share ]; then
    workers=$(( $(nproc) / n )); [ "$workers" -ge 1 ] || workers=1
  fi
  ports=()
  for ((i = 0; i < n; i++)); do
    port=$(free_port)
    FASTREFUND_WORKERS=$workers "$bin" "${sub[@]}" --ledger "$ledger" --policy "$W/policy.toml" --addr "127.0.0.1:$port" >"$W/serve$i.log" 2>&1 &
    pids+=($!)
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    curl -sf "127.0.0.1:$port/readyz" >/dev/null || { tail -5 "$W"/serve*.log >&2; exit 1; }
  done
}

stop_replicas() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}

# advances BIN N: durable advances/s of N replicas of BIN on a fresh database; prints it.
# (Called with its output redirected to a file, not in $(...): it keeps state here.)
advances() {
  local bin=$1 n=$2 ledger i before=0 after=0 c conns w=() in_ledger
  db=$((db + 1))
  psql -q "$FASTREFUND_TEST_PG" -c "CREATE DATABASE bench$db"
  ledger=$BASEURL/bench$db
  start_replicas "$bin" "$n" "$ledger"
  conns=$((16 / n))
  for ((i = 0; i < n; i++)); do
    advance_lua $(((i + 1) * 10000000000)) >"$W/a$i.lua"
    wrk -t1 -c1 -d1s -s "$W/a$i.lua" "http://127.0.0.1:${ports[$i]}" >/dev/null
  done
  for ((i = 0; i < n; i++)); do c=$(count "${ports[$i]}"); before=$((before + ${c%.*})); done
  for ((i = 0; i < n; i++)); do
    advance_lua $(((i + 5) * 10000000000)) >"$W/a$i.lua"
    wrk -t"$conns" -c"$conns" -d"${SECS}s" -s "$W/a$i.lua" "http://127.0.0.1:${ports[$i]}" >"$W/w$i.txt" 2>&1 &
    w+=($!)
  done
  wait "${w[@]}"
  for ((i = 0; i < n; i++)); do c=$(count "${ports[$i]}"); after=$((after + ${c%.*})); done
  in_ledger=$(psql -Atq "$ledger" -c "SELECT count(*) FROM advances")
  # Every advance a replica answered is in the ledger; the ledger may hold a few more
  # (an advance committed as wrk stopped, whose answer nobody read: one per connection).
  [ "$after" -le "$in_ledger" ] && [ "$in_ledger" -le $((after + 16)) ] \
    || { echo "the replicas answered $after advances, the ledger holds $in_ledger" >&2; exit 1; }
  stop_replicas
  python3 -c "print(round(($after - $before) / $SECS, 1))"
}

# eligibility BIN: full rate and p99 at about half of it, with 2 replicas; prints JSON.
eligibility() {
  local bin=$1
  db=$((db + 1))
  psql -q "$FASTREFUND_TEST_PG" -c "CREATE DATABASE bench$db"
  start_replicas "$bin" 2 "$BASEURL/bench$db"
  eligibility_lua 30000000000 >"$W/e0.lua"
  eligibility_lua 40000000000 >"$W/e1.lua"
  wrk -t2 -c8 -d"${SECS}s" -s "$W/e0.lua" "http://127.0.0.1:${ports[0]}" >"$W/f0.txt" 2>&1 &
  local f0=$!
  wrk -t2 -c8 -d"${SECS}s" -s "$W/e1.lua" "http://127.0.0.1:${ports[1]}" >"$W/f1.txt" 2>&1
  wait $f0
  local full conns
  full=$(python3 -c "print($(rps "$W/f0.txt") + $(rps "$W/f1.txt"))")
  conns=$(python3 -c "print(max(1, round($full / 2 * 0.002 / 2)))")
  WRK_DELAY_MS=1 wrk -t1 -c"$conns" -d"${SECS}s" --latency -s "$W/e0.lua" "http://127.0.0.1:${ports[0]}" >"$W/h0.txt" 2>&1 &
  local h0=$!
  WRK_DELAY_MS=1 wrk -t1 -c"$conns" -d"${SECS}s" --latency -s "$W/e1.lua" "http://127.0.0.1:${ports[1]}" >"$W/h1.txt" 2>&1
  wait $h0
  stop_replicas
  python3 - "$full" "$W/h0.txt" "$W/h1.txt" <<'PY'
import json, sys
full, h0, h1 = sys.argv[1:]
def p99(path):
    for line in open(path):
        f = line.split()
        if f and f[0] == "99%":
            v = f[1]
            for unit, k in (("us", 1e-3), ("ms", 1.0), ("s", 1000.0)):
                if v.endswith(unit):
                    return round(float(v[: -len(unit)]) * k, 3)
def rps(path):
    for line in open(path):
        if line.startswith("Requests/sec"):
            return float(line.split()[1])
print(json.dumps({"full_load_per_s": round(float(full), 1),
                  "half_load_per_s": round(rps(h0) + rps(h1), 1),
                  "half_load_p99_ms": [p99(h0), p99(h1)]}))
PY
}

results=()
for n in $REPLICAS; do
  advances "$BIN" "$n" >"$W/r"
  a=$(cat "$W/r")
  b=null
  if [ -n "${BASELINE_BIN:-}" ]; then
    advances "$BASELINE_BIN" "$n" >"$W/r"
    b=$(cat "$W/r")
  fi
  echo "replicas $n: $a advances/s (baseline $b)" >&2
  results+=("{\"replicas\": $n, \"durable_advances_per_s\": $a, \"baseline_advances_per_s\": $b}")
done
eligibility "$BIN" >"$W/r"
ELIG=$(cat "$W/r")
echo "eligibility with 2 replicas: $ELIG" >&2
ELIG_BASE=null
if [ -n "${BASELINE_BIN:-}" ]; then
  eligibility "$BASELINE_BIN" >"$W/r"
  ELIG_BASE=$(cat "$W/r")
  echo "baseline eligibility with 2 replicas: $ELIG_BASE" >&2
fi

# pgbench, 16 clients, on the schema the replicas made (copied into its own database).
psql -q "$FASTREFUND_TEST_PG" -c "CREATE DATABASE pgbench" -c "CREATE DATABASE pgbench_min"
pg_dump -s "$BASEURL/bench1" | psql -q "$BASEURL/pgbench" >/dev/null
pg_dump -s "$BASEURL/bench1" | psql -q "$BASEURL/pgbench_min" >/dev/null
# The smallest statements that do an advance's job, as two commands (the decision, then
# the advance with the buyer's exposure): no locks, no reads.
cat >"$W/minimal.sql" <<'SQL'
\set rid random(1, 9000000000000000)
BEGIN;
INSERT INTO decisions (return_id, decision_id, buyer_id, order_id, merchant_id, category, amount, reason, delivered_at, requested_at, tracking_number, decided_at, star, instant, decision, policy_version, model_version, shadow) VALUES (:rid, nextval('decision_ids'), :rid, :rid, 1, 'shoes', 59.90, 'no_reason', 1782784800000000, 1782871200000000, NULL, 1782874800000000, 3, true, repeat('x', 300), 'bench', 'm', NULL);
COMMIT;
BEGIN;
INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at, advanced_at, local_date) VALUES (:rid, :rid, :rid, 59.90, 'SF' || :rid, 1782874800000000, 1782874800000000, '2026-07-01');
INSERT INTO exposure (buyer_id, outstanding, open_advances, last_loss) VALUES (:rid, 59.90, 1, NULL) ON CONFLICT (buyer_id) DO UPDATE SET outstanding = exposure.outstanding + EXCLUDED.outstanding, open_advances = exposure.open_advances + 1;
COMMIT;
SQL
# The statements the replicas send for an advance (crates/pg), pipelined as they send
# them: the buyer's lock and every read with BEGIN, the decision's insert with COMMIT;
# then the buyer's lock, the parcel's lock and the reads, then the advance and the
# exposure, then COMMIT. (The budget is spent from the replica's slice in memory.)
cat >"$W/pipelined.sql" <<'SQL'
\set rid random(1, 9000000000000000)
\startpipeline
BEGIN;
SELECT pg_advisory_xact_lock(:rid);
SELECT buyer_id, order_id, merchant_id, category, amount, reason, delivered_at, requested_at, tracking_number, decision_id, decision, policy_version, model_version FROM decisions WHERE return_id = :rid;
SELECT outstanding, open_advances, last_loss FROM exposure WHERE buyer_id = :rid;
SELECT reserved FROM daily WHERE day = '2026-07-01';
SELECT EXISTS (SELECT 1 FROM advances WHERE order_id = :rid), EXISTS (SELECT 1 FROM advances WHERE tracking_number = NULL AND return_id <> :rid);
\endpipeline
\startpipeline
INSERT INTO decisions (return_id, decision_id, buyer_id, order_id, merchant_id, category, amount, reason, delivered_at, requested_at, tracking_number, decided_at, star, instant, decision, policy_version, model_version, shadow) VALUES (:rid, nextval('decision_ids'), :rid, :rid, 1, 'shoes', 59.90, 'no_reason', 1782784800000000, 1782871200000000, NULL, 1782874800000000, 3, true, repeat('x', 300), 'bench', 'm', NULL) RETURNING decision_id;
COMMIT;
\endpipeline
\startpipeline
BEGIN;
SELECT buyer_id, pg_advisory_xact_lock(buyer_id) FROM decisions WHERE return_id = :rid;
\endpipeline
\startpipeline
SELECT pg_advisory_xact_lock(1718776944, hashtext('SF' || :rid));
SELECT d.buyer_id, d.order_id, d.amount, d.instant OR r.return_id IS NOT NULL, d.star, a.amount, a.tracking_number, o.outcome, o.outcome_at FROM decisions d LEFT JOIN advances a ON a.return_id = d.return_id LEFT JOIN outcomes o ON o.return_id = d.return_id LEFT JOIN reviewer_releases r ON r.return_id = d.return_id WHERE d.return_id = :rid;
SELECT outstanding, open_advances, last_loss FROM exposure WHERE buyer_id = :rid;
SELECT reserved FROM daily WHERE day = '2026-07-01';
SELECT EXISTS (SELECT 1 FROM advances WHERE order_id = (SELECT order_id FROM decisions WHERE return_id = :rid)), EXISTS (SELECT 1 FROM advances WHERE tracking_number = 'SF' || :rid AND return_id <> :rid);
\endpipeline
\startpipeline
INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at, advanced_at, local_date, slice_id) VALUES (:rid, :rid, :rid, 59.90, 'SF' || :rid, 1782874800000000, 1782874800000000, '2026-07-01', NULL);
INSERT INTO exposure (buyer_id, outstanding, open_advances, last_loss) VALUES (:rid, 59.90, 1, NULL) ON CONFLICT (buyer_id) DO UPDATE SET outstanding = EXCLUDED.outstanding, open_advances = EXCLUDED.open_advances, last_loss = EXCLUDED.last_loss;
\endpipeline
COMMIT;
SQL
pgbench_tps() { # DB SCRIPT
  "$PGBIN/pgbench" -n -M prepared -c 16 -j 2 -T "$SECS" -f "$2" "$BASEURL/$1" >"$W/pgbench.txt" 2>&1 \
    || { cat "$W/pgbench.txt" >&2; exit 1; }
  awk '/^tps = / {print $3; exit}' "$W/pgbench.txt"
}
PGB_MIN=$(pgbench_tps pgbench_min "$W/minimal.sql")
PGB_OURS=$(pgbench_tps pgbench "$W/pipelined.sql")
echo "pgbench: smallest statements $PGB_MIN advances/s, ours pipelined $PGB_OURS" >&2
python3 - "$OUT" "$SECS" "$(nproc)" "$PGB_MIN" "$PGB_OURS" "$ELIG" "$ELIG_BASE" "${results[@]}" <<'PY'
import datetime, json, sys
out, secs, cores, pgb_min, pgb_ours, elig, elig_base, *rounds = sys.argv[1:]
rounds = [json.loads(r) for r in rounds]
for r in rounds:
    r["ratio_to_smallest_statements"] = round(r["durable_advances_per_s"] / float(pgb_min), 3)
    if r["baseline_advances_per_s"]:
        r["ratio_to_baseline"] = round(r["durable_advances_per_s"] / r["baseline_advances_per_s"], 3)
result = {
    "date": datetime.date.today().isoformat(),
    "cores": int(cores),
    "seconds": int(secs),
    "connections": 16,
    "pgbench_smallest_statements_per_s": float(pgb_min),
    "pgbench_our_statements_pipelined_per_s": float(pgb_ours),
    "rounds": rounds,
    "eligibility_2_replicas": json.loads(elig),
    "baseline_eligibility_2_replicas": json.loads(elig_base),
}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result, indent=2))
PY
