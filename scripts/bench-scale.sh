#!/usr/bin/env bash
# Ratings at scale (issue 13): for each size, a generated history (seed 5), then in one
# run, compared:
#   - `rate` holding the history whole (--shards 1; skipped above 2M buyers: it needs
#     about 4.6 GiB per million buyers);
#   - `rate` with its default memory setting (4 GiB: split by buyer into shards on disk);
#   - the `export-sql` script on DuckDB over the same Parquet files: whole up to 1.25M
#     buyers, above that in buyer shards of about 1.25M each (`--buyer-shard k/N`, run
#     one after the other; the whole query spills past the disk at 20M);
#   - at 1M buyers, the Spark (local[2]) script.
# Each is its own process under GNU time (wall, CPU, peak RSS); rate's stage times are
# in its log. The model is the shipped champion. With $BASELINE_BIN (an earlier build),
# its `rate` runs too, on the same history, as the baseline of the same run (with
# $BASELINE_MODEL, when that build cannot read the champion).
#
# DuckDB's memory is capped at $FASTREFUND_DUCKDB_MEMORY (default 4GB, as rate's).
# Usage: scripts/bench-scale.sh OUTDIR SIZE...      e.g. scripts/bench-scale.sh /work/scale 1000000 20000000
# Needs about 0.5 GB of disk per million buyers, twice (history and shards).
# Writes OUTDIR/SIZE/*.rusage, *.log and OUTDIR/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$1; shift
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$BIN" ] || cargo build --release -p fastrefund
scripts/venv.sh scripts/requirements-sql.txt target/sql-venv >/dev/null
PY=target/sql-venv/bin/python
M="models/$(cat models/CHAMPION)/model.json"
mkdir -p "$OUT"
run() { # dir name command...
  local d=$1 name=$2; shift 2
  echo "  $name" >&2
  /usr/bin/time -v -o "$d/$name.rusage" "$@" >"$d/$name.out" 2>"$d/$name.log" || { echo "$name failed" >&2; tail -3 "$d/$name.log" >&2; }
}
for n in "$@"; do
  d=$OUT/$n; mkdir -p "$d"
  echo "$n buyers" >&2
  [ -s "$d/generate.rusage" ] || run "$d" generate "$BIN" generate --buyers "$n" --seed 5 --out "$d/hist"
  if [ -n "${BASELINE_BIN:-}" ] && [ "$n" -le 2000000 ]; then
    run "$d" rate-baseline "$BASELINE_BIN" rate --data "$d/hist" --model "${BASELINE_MODEL:-$M}" --as-of 2026-06-30 --out "$d/snap-baseline" --force
    rm -rf "$d/snap-baseline"
  fi
  if [ "$n" -le 2000000 ]; then
    run "$d" rate-whole "$BIN" rate --data "$d/hist" --model "$M" --as-of 2026-06-30 --out "$d/snap-whole" --force --shards 1
    rm -rf "$d/snap-whole"
  fi
  run "$d" rate "$BIN" rate --data "$d/hist" --model "$M" --as-of 2026-06-30 --out "$d/snap" --force
  ds=$(( (n + 1249999) / 1250000 ))
  if [ "$ds" -le 1 ]; then
    "$BIN" export-sql --model "$M" --as-of 2026-06-30 --dialect duckdb --out "$d/rate-duckdb.sql"
    run "$d" duckdb "$PY" scripts/check_sql.py duckdb "$d/rate-duckdb.sql" "$d/hist" "$d/snap/ratings.parquet"
  else
    rm -rf "$d/duckdb-sql"; mkdir -p "$d/duckdb-sql"
    for k in $(seq 0 $((ds - 1))); do
      "$BIN" export-sql --model "$M" --as-of 2026-06-30 --dialect duckdb --buyer-shard "$k/$ds" --out "$(printf '%s/duckdb-sql/shard-%02d.sql' "$d" "$k")"
    done
    run "$d" duckdb "$PY" scripts/check_sql.py duckdb "$d/duckdb-sql" "$d/hist" "$d/snap/ratings.parquet"
  fi
  if [ "$n" -le 1000000 ]; then
    "$BIN" export-sql --model "$M" --as-of 2026-06-30 --dialect spark --out "$d/rate-spark.sql"
    run "$d" spark "$PY" scripts/check_sql.py spark "$d/rate-spark.sql" "$d/hist" "$d/snap/ratings.parquet"
  fi
done
"$PY" - "$OUT" "$@" <<'PYEOF' | tee "$OUT/results.txt"
import sys, os, re
out, sizes = sys.argv[1], sys.argv[2:]
def ru(p):
    if not os.path.exists(p): return None
    t = open(p).read()
    g = lambda k: re.search(re.escape(k) + r": (.*)", t).group(1).strip()
    wall = g("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
    return secs, float(g("User time (seconds)")) + float(g("System time (seconds)")), int(g("Maximum resident set size (kbytes)")) / 1048576
print("| buyers | step | wall s | CPU s | peak RSS GiB | s per 1M buyers |")
print("| ---: | --- | ---: | ---: | ---: | ---: |")
for n in sizes:
    for step in ["generate", "rate-baseline", "rate-whole", "rate", "duckdb", "spark"]:
        r = ru(f"{out}/{n}/{step}.rusage")
        if r:
            print(f"| {int(n):,} | {step} | {r[0]:.1f} | {r[1]:.1f} | {r[2]:.2f} | {r[0] / (int(n) / 1e6):.1f} |")
    for step in ["duckdb", "spark"]:
        p = f"{out}/{n}/{step}.out"
        if os.path.exists(p): print(f"<!-- {n} {step}: {open(p).read().strip()} -->")
PYEOF
