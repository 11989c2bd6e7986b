#!/usr/bin/env bash
# Where a durable advance's CPU goes on PostgreSQL: one replica on a throwaway
# PostgreSQL, 16 wrk connections each asking eligibility for a new return and then
# posting its tracking number (bench-pg.sh's load), for SECONDS; the CPU of the
# replica, of every postgres process and of wrk, read from /proc before and after,
# per advance. With STATS=1 the server runs pg_stat_statements and its busiest
# statements are listed (execution time per call).
# Usage: [STATS=1] [WORKERS=2] scripts/bench-pg-cpu.sh [SECONDS]
# FASTREFUND_BIN: the server (default target/release/fastrefund-serve, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
# shellcheck source=wrk-lua.sh
source scripts/wrk-lua.sh
SECS=${1:-10}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund-serve}
[ -x "$BIN" ] || cargo build --release -p fastrefund-service
eval "$(scripts/pg-test-server.sh start)"
BASEURL=${FASTREFUND_TEST_PG%/postgres}
W=$(mktemp -d)
RP=
trap '[ -n "$RP" ] && kill "$RP" 2>/dev/null; scripts/pg-test-server.sh stop "$FASTREFUND_TEST_PG_DIR"; rm -rf "$W"' EXIT
if [ -n "${STATS:-}" ]; then
  d=$FASTREFUND_TEST_PG_DIR
  runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" -D "$d/data" -l "$d/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $(cat "$d/port") -k $d -c max_connections=200 -c shared_preload_libraries=pg_stat_statements" restart >/dev/null
fi
sed -e 's/^unknown_buyer_star = .*/unknown_buyer_star = 3/' -e 's/^version = .*/version = "bench"/' \
  -e '/^\[cases\]/,$d' config/policy.toml >"$W/policy.toml"
export FASTREFUND_API_TOKEN=bench-api-token FASTREFUND_ADMIN_TOKEN=bench-admin-token RUST_LOG=warn
psql -q "$FASTREFUND_TEST_PG" -c "CREATE DATABASE b1"
[ -z "${STATS:-}" ] || psql -q "$BASEURL/b1" -c "CREATE EXTENSION pg_stat_statements"
PORT=$(free_port)
sub=()
[[ $(basename "$BIN") == *-serve ]] || sub=(serve)
FASTREFUND_WORKERS=${WORKERS:-$(nproc)} "$BIN" "${sub[@]}" --ledger "$BASEURL/b1" --policy "$W/policy.toml" --addr "127.0.0.1:$PORT" >"$W/serve.log" 2>&1 &
RP=$!
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
advance_lua 10000000000 >"$W/a.lua"
wrk -t1 -c1 -d1s -s "$W/a.lua" "http://127.0.0.1:$PORT" >/dev/null
advance_lua 50000000000 >"$W/a.lua"
# user and system clock ticks of the given processes
ticks() { for p in "$@"; do [ -r "/proc/$p/stat" ] && awk '{print $14, $15}' "/proc/$p/stat"; done | awk '{u += $1; s += $2} END {print u + 0, s + 0}'; }
count() { curl -sf "127.0.0.1:$PORT/metrics" | awk '/^fastrefund_advances_total/ {print $2}'; }
busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# shellcheck disable=SC2046
{ r0=$(ticks "$RP"); p0=$(ticks $(pgrep -x postgres)); c0=$(count); b0=$(busy); }
/usr/bin/time -f "%U %S" -o "$W/wrk.cpu" wrk -t16 -c16 -d"${SECS}s" -s "$W/a.lua" "http://127.0.0.1:$PORT" >"$W/wrk.txt"
# shellcheck disable=SC2046
{ r1=$(ticks "$RP"); p1=$(ticks $(pgrep -x postgres)); c1=$(count); b1=$(busy); }
python3 - "$r0" "$r1" "$p0" "$p1" "$c0" "$c1" "$(cat "$W/wrk.cpu")" "$b0" "$b1" "$SECS" "$(getconf CLK_TCK)" <<'PY'
import sys
a = sys.argv[1:]
r0, r1, p0, p1 = ([int(x) for x in s.split()] for s in a[0:4])
n = float(a[5]) - float(a[4])
wu, ws = map(float, a[6].split())
b0, b1 = ([int(x) for x in s.split()] for s in a[7:9])
secs, tick = float(a[9]), 1e6 / int(a[10])
us = lambda d: d * tick / n
print(f"durable advances: {n:.0f} in {secs:.0f} s, {n / secs:.0f}/s; machine busy {(b1[0] - b0[0]) / (b1[1] - b0[1]):.2f}")
print(f"CPU per advance: replica {us(r1[0] - r0[0] + r1[1] - r0[1]):.0f} us, "
      f"postgres {us(p1[0] - p0[0] + p1[1] - p0[1]):.0f} us (user {us(p1[0] - p0[0]):.0f}, system {us(p1[1] - p0[1]):.0f}), "
      f"wrk {(wu + ws) * 1e6 / n:.0f} us")
PY
[ -z "${STATS:-}" ] || psql -q "$BASEURL/b1" -c "SELECT calls, round(total_exec_time::numeric / greatest(calls, 1) * 1000) AS exec_us, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement FROM pg_stat_statements WHERE calls > 100 ORDER BY total_exec_time DESC LIMIT 15"
