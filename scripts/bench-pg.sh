#!/usr/bin/env bash
# Durable advances per second with two service replicas on one PostgreSQL (fsync on,
# synchronous_commit on: PostgreSQL's defaults), and beside it, in the same run, pgbench
# running the same statements on the same server: the database's own limit here.
#
# Each wrk connection asks eligibility for a new return of a new buyer, then posts its
# tracking number (advanced): two transactions per advance, as in the service. Half the
# connections go to each replica (one connection per wrk thread, so that its requests
# and answers alternate). The advances the replicas counted are checked against
# the ledger's own export. Then the eligibility p99 at about half of the full rate.
#
# Usage: scripts/bench-pg.sh [SECONDS] [OUT.json]   (defaults 10, target/bench-pg.json)
# Uses $FASTREFUND_BIN (default target/release/fastrefund, built if missing). Starts and
# stops its own throwaway PostgreSQL (scripts/pg-test-server.sh). Everything shares the
# machine's cores: PostgreSQL, both replicas, wrk and pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
SECS=${1:-10}
OUT=${2:-target/bench-pg.json}
mkdir -p "$(dirname "$OUT")"
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$BIN" ] || cargo build --release -p fastrefund
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
psql -q "$FASTREFUND_TEST_PG" -c "CREATE DATABASE bench" -c "CREATE DATABASE pgbench"
LEDGER=$BASEURL/bench

sed -e 's/^unknown_buyer_star = .*/unknown_buyer_star = 3/' -e 's/^version = .*/version = "bench"/' \
  config/policy.toml >"$W/policy.toml"
export FASTREFUND_API_TOKEN=bench-api-token FASTREFUND_ADMIN_TOKEN=bench-admin-token RUST_LOG=warn
ports=()
for i in 0 1; do
  port=$(free_port)
  "$BIN" serve --ledger "$LEDGER" --policy "$W/policy.toml" --addr "127.0.0.1:$port" >"$W/serve$i.log" 2>&1 &
  pids+=($!)
  ports+=("$port")
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done

# shellcheck source=wrk-lua.sh
source scripts/wrk-lua.sh
advance_lua 10000000000 >"$W/a0.lua"
advance_lua 20000000000 >"$W/a1.lua"
eligibility_lua 30000000000 >"$W/e0.lua"
eligibility_lua 40000000000 >"$W/e1.lua"
count() { curl -sf "127.0.0.1:$1/metrics" | awk '/^fastrefund_advances_total/ {print $2}'; }
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
echo "warming up" >&2
wrk -t1 -c1 -d2s -s "$W/a0.lua" "http://127.0.0.1:${ports[0]}" >/dev/null
b0=$(count "${ports[0]}")
b1=$(count "${ports[1]}")
wrk -t8 -c8 -d"${SECS}s" --latency -s "$W/a0.lua" "http://127.0.0.1:${ports[0]}" >"$W/w0.txt" 2>&1 &
w0=$!
wrk -t8 -c8 -d"${SECS}s" --latency -s "$W/a1.lua" "http://127.0.0.1:${ports[1]}" >"$W/w1.txt" 2>&1
wait $w0
cat "$W/w0.txt" "$W/w1.txt" >&2
a0=$(count "${ports[0]}")
a1=$(count "${ports[1]}")
ADV=$(python3 -c "print(round(((${a0:-0}-${b0:-0})+(${a1:-0}-${b1:-0}))/$SECS, 1))")

# Eligibility at full load on both replicas, then at about half that rate (each
# connection pauses 1 ms after every answer) for its p99.
wrk -t2 -c8 -d"${SECS}s" -s "$W/e0.lua" "http://127.0.0.1:${ports[0]}" >"$W/f0.txt" 2>&1 &
f0=$!
wrk -t2 -c8 -d"${SECS}s" -s "$W/e1.lua" "http://127.0.0.1:${ports[1]}" >"$W/f1.txt" 2>&1
wait $f0
FULL=$(python3 -c "print($(rps "$W/f0.txt") + $(rps "$W/f1.txt"))")
CONNS=$(python3 -c "print(max(1, round($FULL / 2 * 0.002 / 2)))")
WRK_DELAY_MS=1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$W/e0.lua" "http://127.0.0.1:${ports[0]}" >"$W/h0.txt" 2>&1 &
h0=$!
WRK_DELAY_MS=1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$W/e1.lua" "http://127.0.0.1:${ports[1]}" >"$W/h1.txt" 2>&1
wait $h0
cat "$W/h0.txt" "$W/h1.txt" >&2
HALF=$(python3 -c "print($(rps "$W/h0.txt") + $(rps "$W/h1.txt"))")

"$BIN" export-outcomes --ledger "$LEDGER" --out "$W/outcomes.csv" 2>/dev/null
IN_LEDGER=$(python3 -c "import csv,sys; print(sum(r['advanced']=='true' for r in csv.DictReader(open(sys.argv[1]))))" "$W/outcomes.csv")
COUNTED=$(python3 -c "print(int(${a0:-0}+${a1:-0}))")
# Every advance a replica answered is in the ledger. The ledger may hold a few more: an
# advance committed as wrk stopped, whose answer nobody read (at most one per
# connection, 16).
python3 -c "import sys; c, l = int(sys.argv[1]), int(sys.argv[2]); sys.exit(0 if c <= l <= c + 16 else 1)" "$COUNTED" "$IN_LEDGER" \
  || { echo "the replicas answered $COUNTED advances, the ledger holds $IN_LEDGER" >&2; exit 1; }
kill "${pids[@]}"
wait "${pids[@]}" 2>/dev/null || true
pids=()

# pgbench: the same two transactions per advance, with the statements the replicas send,
# on the ledger's schema (made by the replicas' migration, copied into the pgbench
# database). Twice: one statement at a time, and pipelined as the replicas send them
# (crates/pg's module doc: what does not wait for an answer goes in one round trip),
# PostgreSQL's limit for a client that pipelines. The plain script is the pipelined one
# without its pipeline marks.
pg_dump -s "$LEDGER" | psql -q "$BASEURL/pgbench" >/dev/null
cat >"$W/pipelined.sql" <<'SQL'
\set rid random(1, 9000000000000000)
\startpipeline
BEGIN;
SELECT pg_advisory_xact_lock(:rid);
SELECT buyer_id, order_id, merchant_id, category, amount, reason, delivered_at, requested_at, tracking_number, decision_id, decision, policy_version, model_version FROM decisions WHERE return_id = :rid;
SELECT outstanding, open_advances, last_loss FROM exposure WHERE buyer_id = :rid;
SELECT advanced FROM daily WHERE day = '2026-07-01';
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
SELECT d.buyer_id, d.order_id, d.amount, d.instant, d.star, a.amount, a.tracking_number, o.outcome, o.outcome_at FROM decisions d LEFT JOIN advances a ON a.return_id = d.return_id LEFT JOIN outcomes o ON o.return_id = d.return_id WHERE d.return_id = :rid;
SELECT outstanding, open_advances, last_loss FROM exposure WHERE buyer_id = :rid;
SELECT advanced FROM daily WHERE day = '2026-07-01';
SELECT EXISTS (SELECT 1 FROM advances WHERE order_id = (SELECT order_id FROM decisions WHERE return_id = :rid)), EXISTS (SELECT 1 FROM advances WHERE tracking_number = 'SF' || :rid AND return_id <> :rid);
\endpipeline
\startpipeline
INSERT INTO daily (day, advanced) VALUES ('2026-07-01', 0) ON CONFLICT (day) DO NOTHING;
SELECT advanced FROM daily WHERE day = '2026-07-01' FOR UPDATE;
\endpipeline
\startpipeline
INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at, advanced_at, local_date) VALUES (:rid, :rid, :rid, 59.90, 'SF' || :rid, 1782874800000000, 1782874800000000, '2026-07-01');
INSERT INTO exposure (buyer_id, outstanding, open_advances, last_loss) VALUES (:rid, 59.90, 1, NULL) ON CONFLICT (buyer_id) DO UPDATE SET outstanding = EXCLUDED.outstanding, open_advances = EXCLUDED.open_advances, last_loss = EXCLUDED.last_loss;
UPDATE daily SET advanced = advanced + 59.90 WHERE day = '2026-07-01';
\endpipeline
COMMIT;
SQL
grep -v -e '^\\startpipeline' -e '^\\endpipeline' "$W/pipelined.sql" >"$W/advance.sql"
"$PGBIN/pgbench" -n -M prepared -c 16 -j 2 -T "$SECS" -f "$W/advance.sql" "$BASEURL/pgbench" >"$W/pgbench.txt" 2>&1 \
  || { cat "$W/pgbench.txt" >&2; exit 1; }
cat "$W/pgbench.txt" >&2
PGB=$(awk '/^tps = / {print $3; exit}' "$W/pgbench.txt")

"$PGBIN/pgbench" -n -M prepared -c 16 -j 2 -T "$SECS" -f "$W/pipelined.sql" "$BASEURL/pgbench" >"$W/pgbench-pipelined.txt" 2>&1 \
  || { cat "$W/pgbench-pipelined.txt" >&2; exit 1; }
cat "$W/pgbench-pipelined.txt" >&2
PGBP=$(awk '/^tps = / {print $3; exit}' "$W/pgbench-pipelined.txt")
python3 - "$OUT" "$ADV" "$PGB" "$SECS" "$(nproc)" "$FULL" "$HALF" "$W/h0.txt" "$W/h1.txt" "$PGBP" <<'PY'
import datetime, json, sys
out, adv, pgb, secs, cores, full, half, h0, h1, pgbp = sys.argv[1:]
def p99(path):
    for line in open(path):
        f = line.split()
        if f and f[0] == "99%":
            v = f[1]
            for unit, k in (("us", 1e-3), ("ms", 1.0), ("s", 1000.0)):
                if v.endswith(unit):
                    return round(float(v[: -len(unit)]) * k, 3)
r = {
    "date": datetime.date.today().isoformat(),
    "cores": int(cores),
    "seconds": int(secs),
    "replicas": 2,
    "durable_advances_per_s": float(adv),
    "pgbench_advances_per_s": float(pgb),
    "ratio_to_pgbench": round(float(adv) / float(pgb), 3),
    "pgbench_pipelined_advances_per_s": float(pgbp),
    "ratio_to_pgbench_pipelined": round(float(adv) / float(pgbp), 3),
    "eligibility_full_load_per_s": round(float(full), 1),
    "eligibility_half_load_per_s": round(float(half), 1),
    "eligibility_half_load_p99_ms": [p99(h0), p99(h1)],
}
json.dump(r, open(out, "w"), indent=2)
print(json.dumps(r, indent=2))
PY
