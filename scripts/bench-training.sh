#!/usr/bin/env bash
# Training benchmark: our Rust scorecard trainer against a Python one (optbinning) on the
# same table, with wall time, CPU time, peak RSS and train/test ROC AUC of each.
#
# Usage: scripts/bench-training.sh [BUYERS] [OUTDIR]     (defaults: 1000000 target/bench-training)
#
# Steps:
#  1. Installs the pinned packages of scripts/requirements-bench.txt into target/bench-venv
#     (skipped when the requirements are unchanged).
#  2. Generates a synthetic history of BUYERS buyers, seed 11, into OUTDIR/hist (skipped
#     when OUTDIR/hist/.generated says it already holds the same BUYERS and seed).
#  3. Writes the buyer features as of 2026-01-01 and 2026-04-01 (`fastrefund features`) and
#     builds one table OUTDIR/table.parquet with polars: the buyers with a return request in
#     the next 90 days (active_90d) and a label, a string column `period` = the as-of date.
#     Rows of 2026-01-01 train, rows of 2026-04-01 test (out of time), for both trainers.
#  4. Times, one after the other, each as its own process:
#     a. rust-table:   fastrefund train --table OUTDIR/table.parquet --no-challenger (the
#                      split column is excluded from the features automatically)
#     a2. rust-table-all: the same, keeping every feature (--min-iv 0 --max-correlation 1),
#                      as optbinning does by default: the like-for-like AUC comparison
#     b. python:       scripts/bench_python_scorecard.py (optbinning Scorecard: BinningProcess
#                      + sklearn LogisticRegression + pdo/odds scaling), which also times its
#                      own stages (read, fit, score) with time.perf_counter
#     c. rust-history: fastrefund train --data OUTDIR/hist --as-of 2026-01-01 (features from
#                      the raw history, scorecard, evaluation, report and the bagged-trees
#                      challenger: the "training with binning and evaluation" figure)
#     Wall time is taken with `date +%s.%N` around each command; CPU time and peak RSS with
#     GNU time (/usr/bin/time -v). Without GNU time, a small Python wrapper reads the
#     child's rusage instead (same fields; its wall time then includes the wrapper's start).
#  5. Writes OUTDIR/results.json (every number, incl. python_fit_seconds / rust_train_seconds
#     where rust_train_seconds is the whole `train --table` process) and prints a Markdown
#     table.
#
# Environment: FASTREFUND_BIN (default target/release/fastrefund; a benchmark wants a release
# build, so it is not built here), BENCH_SEED (default 11), BENCH_NO_GNU_TIME=1 (use the
# rusage wrapper), BENCH_KEEP_OPENBLAS_ENV=1 (see below).
#
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, when this machine sets them, pin old-processor kernels
# that slow a current numpy; the Python run drops both (that command alone) unless
# BENCH_KEEP_OPENBLAS_ENV=1, and results.json records which BLAS kernels it ran.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
BUYERS=${1:-1000000}
OUT=${2:-target/bench-training}
SEED=${BENCH_SEED:-11}
TRAIN_AS_OF=2026-01-01
TEST_AS_OF=2026-04-01
case "$BUYERS" in '' | *[!0-9]*) echo "BUYERS must be a number, got '$BUYERS'" >&2; exit 2 ;; esac

BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
if [ ! -x "$BIN" ]; then
  echo "no binary at $BIN: build it with 'cargo build --release' or set FASTREFUND_BIN" >&2
  exit 1
fi
BIN=$(realpath "$BIN")

# 1. Python packages.
VENV=target/bench-venv
scripts/venv.sh scripts/requirements-bench.txt "$VENV"
PY=$PWD/$VENV/bin/python  # not realpath: that resolves the venv symlink to the base python

mkdir -p "$OUT"
OUT=$(realpath "$OUT")

# Runs "$@" as step $1, with its output in $OUT/$1.log, its wall seconds in $OUT/$1.wall and
# its rusage (GNU time -v format, or the wrapper's lines in the same words) in $OUT/$1.rusage.
TIME_BIN=
if [ -z "${BENCH_NO_GNU_TIME:-}" ] && [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then
  TIME_BIN=/usr/bin/time
fi
run_step() {
  local name=$1 t0 t1 rc=0
  shift
  t0=$(date +%s.%N)
  if [ -n "$TIME_BIN" ]; then
    "$TIME_BIN" -v -o "$OUT/$name.rusage" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  else
    "$PY" -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"\tUser time (seconds): {u.ru_utime:.2f}\n\tSystem time (seconds): {u.ru_stime:.2f}\n"
            f"\tMaximum resident set size (kbytes): {u.ru_maxrss}\n\tExit status: {rc}\n")
sys.exit(rc)' "$OUT/$name.rusage" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  fi
  t1=$(date +%s.%N)
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$OUT/$name.log" >&2
    echo "step $name failed (exit $rc): $*" >&2
    exit 1
  fi
  echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }' >"$OUT/$name.wall"
  echo "  $name: $(cat "$OUT/$name.wall")s"
}

# 2. History.
HIST=$OUT/hist
marker="buyers=$BUYERS seed=$SEED"
if [ -f "$HIST/returns.parquet" ] && [ "$(cat "$HIST/.generated" 2>/dev/null)" = "$marker" ]; then
  echo "history: reusing $HIST ($marker)"
  rm -f "$OUT/generate.wall" "$OUT/generate.rusage"
else
  echo "history: generating $BUYERS buyers (seed $SEED) into $HIST"
  rm -rf "$HIST"
  run_step generate "$BIN" generate --buyers "$BUYERS" --seed "$SEED" --out "$HIST"
  echo "$marker" >"$HIST/.generated"
fi

# 3. Features at both dates and the one table.
echo "features as of $TRAIN_AS_OF and $TEST_AS_OF"
for d in "$TRAIN_AS_OF" "$TEST_AS_OF"; do
  run_step "features-$d" "$BIN" features --data "$HIST" --as-of "$d" --out "$OUT/f-$d.parquet"
done
"$PY" - "$OUT/table.parquet" "$OUT/f-$TRAIN_AS_OF.parquet" "$TRAIN_AS_OF" "$OUT/f-$TEST_AS_OF.parquet" "$TEST_AS_OF" <<'EOF'
import sys
import polars as pl

out, rest = sys.argv[1], sys.argv[2:]
parts = []
for path, as_of in zip(rest[0::2], rest[1::2]):
    parts.append(
        pl.read_parquet(path)
        .filter(pl.col("active_90d") & pl.col("bad_90d").is_not_null())
        .drop("active_90d")
        .with_columns(pl.lit(as_of, dtype=pl.String).alias("period"))
    )
table = pl.concat(parts)
table.write_parquet(out)
summary = table.group_by("period").agg(rows=pl.len(), bad_rate=pl.col("bad_90d").mean()).sort("period")
print(f"table: {out}: {table.height} rows, {table.width} columns")
for r in summary.iter_rows(named=True):
    print(f"  period {r['period']}: {r['rows']} rows, bad rate {r['bad_rate']:.4f}")
EOF

# 4. The timed runs, one after the other.
echo "timed runs"
rm -rf "$OUT/rust-model" "$OUT/rust-model-all" "$OUT/rust-history-model" "$OUT/python-result.json"
run_step rust-table "$BIN" train --table "$OUT/table.parquet" --label bad_90d \
  --split-column period --split-at "$TEST_AS_OF" --exclude buyer_id --no-challenger --out "$OUT/rust-model"
run_step rust-table-all "$BIN" train --table "$OUT/table.parquet" --label bad_90d \
  --split-column period --split-at "$TEST_AS_OF" --exclude buyer_id --no-challenger \
  --min-iv 0 --max-correlation 1 --out "$OUT/rust-model-all"
py_env=(env)
if [ -z "${BENCH_KEEP_OPENBLAS_ENV:-}" ]; then py_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE); fi
run_step python "${py_env[@]}" "$PY" scripts/bench_python_scorecard.py --table "$OUT/table.parquet" \
  --label bad_90d --split-column period --split-at "$TEST_AS_OF" --exclude buyer_id,period \
  --out "$OUT/python-result.json"
run_step rust-history "$BIN" train --data "$HIST" --as-of "$TRAIN_AS_OF" --out "$OUT/rust-history-model"

# 5. results.json and the Markdown summary.
"$PY" - "$OUT" "$BUYERS" "$SEED" "$BIN" "${TIME_BIN:-rusage-wrapper}" <<'EOF'
import json
import os
import platform
import re
import sys
from pathlib import Path

out, buyers, seed, binary, timer = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]


sys.path.insert(0, "scripts")
import benchlib


def rusage(step):
    """Wall seconds (date), CPU seconds and peak RSS (GNU time -v or the wrapper)."""
    return {
        "wall_seconds": float((out / f"{step}.wall").read_text()),
        **{k: v for k, v in benchlib.rusage((out / f"{step}.rusage").read_text()).items() if k != "wall_seconds"},
    }


def spans(step):
    """The trainer's own stage timers."""
    return benchlib.spans((out / f"{step}.log").read_text())


def rust(step, model_dir):
    model = json.loads((out / model_dir / "model.json").read_text())
    tr, te = model["metrics"]["train"], model["metrics"]["test"]
    r = {
        "command": step,
        **rusage(step),
        "rows_train": tr["rows"],
        "rows_test": te["rows"],
        "features_kept": len(model["features"]),
        "auc_train": tr["auc"],
        "auc_test": te["auc"],
        "spans_seconds": spans(step),
    }
    ev = json.loads((out / model_dir / "evaluation.json").read_text())
    if ev.get("challenger"):
        r["challenger_auc_train"] = ev["challenger"].get("train_auc")
        r["challenger_auc_test"] = ev["challenger"].get("auc")
    return r


py = json.loads((out / "python-result.json").read_text())
runs = {
    "rust_table": rust("rust-table", "rust-model"),
    "rust_table_all_features": rust("rust-table-all", "rust-model-all"),
    "python_optbinning": {
        "command": "python",
        **rusage("python"),
        **{k: v for k, v in py.items() if k not in ("table",)},
    },
    "rust_history": rust("rust-history", "rust-history-model"),
}
rt, pr, rh = runs["rust_table"], runs["python_optbinning"], runs["rust_history"]
ra_all = runs["rust_table_all_features"]
hist_fit = next((v for k, v in rh["spans_seconds"].items() if k.startswith("fit")), None)
prep = {}
for step in ["generate", f"features-2026-01-01", f"features-2026-04-01"]:
    if (out / f"{step}.wall").exists():
        prep[step] = rusage(step)
results = {
    "buyers": buyers,
    "seed": seed,
    "binary": binary,
    "timer": timer,
    "machine": {
        "cpus": os.cpu_count(),
        "processor": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()),
        "python": platform.python_version(),
    },
    "table": {"path": str(out / "table.parquet"), "rows": rt["rows_train"] + rt["rows_test"]},
    "preparation": prep,
    "runs": runs,
    "ratios": {
        # As asked: Python's Scorecard.fit alone over the whole `fastrefund train --table` process.
        "python_fit_seconds / rust_train_seconds": pr["fit_seconds"] / rt["wall_seconds"],
        "python_wall / rust_table_wall": pr["wall_seconds"] / rt["wall_seconds"],
        # Like for like on the fit (binning + LR + scaling), where the history run times it.
        "python_fit_seconds / rust_history_fit_span": (pr["fit_seconds"] / hist_fit) if hist_fit else None,
    },
}
(out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

f3 = lambda x: "–" if x is None else f"{x:.3f}"
f4 = lambda x: "–" if x is None else f"{x:.4f}"
print()
print(f"## Training benchmark: {buyers} buyers (seed {seed}), {os.cpu_count()} CPUs, timer: {timer}")
print()
print("| run | rows train / test | features | wall s | CPU s | peak RSS MiB | train AUC | test AUC |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
rows = [
    ("Rust `train --table`, no challenger", rt, f"{rt['features_kept']} kept of {pr['features']}"),
    ("Rust `train --table`, every feature (--min-iv 0 --max-correlation 1)", ra_all, f"{ra_all['features_kept']} kept of {pr['features']}"),
    (f"Python optbinning {pr['version']} (fit {pr['fit_seconds']:.3f} s, score {pr['score_seconds']:.3f} s)", pr,
     f"{pr['features_selected']} of {pr['features']}"),
    ("Rust `train --data` (features + scorecard + challenger)", rh, f"{rh['features_kept']} kept"),
]
for name, r, feats in rows:
    print(f"| {name} | {r['rows_train']} / {r['rows_test']} | {feats} | {f3(r['wall_seconds'])} | "
          f"{f3(r['user_seconds'] + r['sys_seconds'])} | {r['max_rss_mib']:.1f} | {f4(r['auc_train'])} | {f4(r['auc_test'])} |")
print()
if "challenger_auc_test" in rh:
    print(f"Challenger (bagged trees) of the history run: train AUC {f4(rh['challenger_auc_train'])}, test AUC {f4(rh['challenger_auc_test'])}.")
ra = results["ratios"]
print(f"python_fit_seconds / rust_train_seconds = {ra['python_fit_seconds / rust_train_seconds']:.2f} "
      f"(Python Scorecard.fit alone vs the whole `train --table` process); "
      f"python wall / rust table wall = {ra['python_wall / rust_table_wall']:.2f}; "
      f"Python fit / Rust history `fit` span = {f3(ra['python_fit_seconds / rust_history_fit_span'])}.")
print(f"Python stages: import {pr['import_seconds']:.3f} s, read {pr['read_seconds']:.3f} s, prep {pr['prep_seconds']:.3f} s, fit {pr['fit_seconds']:.3f} s "
      f"(binning {f3(pr['fit_breakdown_seconds']['binning'])}, LR {f3(pr['fit_breakdown_seconds']['logistic_regression'])}, "
      f"scaling {f3(pr['fit_breakdown_seconds']['scaling'])}), score {pr['score_seconds']:.3f} s, in-script total {pr['total_seconds']:.3f} s.")
print(f"Results: {out / 'results.json'}")
EOF
echo "bench-training done in $(( $(date +%s) - start ))s"
