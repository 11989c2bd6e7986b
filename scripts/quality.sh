#!/usr/bin/env bash
# Model quality against the generator's hidden truth, as issue 2 measures it: generate a
# history of BUYERS buyers (seed 11), train as of 2026-01-01 with the out-of-time test as
# of 2026-04-01, rate every buyer as of 2026-06-30, and judge the stars by hidden type.
#
# Usage: scripts/quality.sh [BUYERS] [OUTDIR]     (defaults: 200000 target/quality-200k)
# $TRAIN_ARGS: more options for `train` (e.g. "--prebinning cart --binning optimal").
# Writes OUTDIR/model/ (model.json, evaluation.json with the out-of-time test,
# challenger.json, report.html and its figures), OUTDIR/snapshot/, OUTDIR/judge/ (star-by-type.json/.md/.svg) and
# OUTDIR/quality.json, which gathers the figures docs/model-quality.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${1:-200000}
OUT=${2:-target/quality-$((BUYERS / 1000))k}
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$BIN" ] || cargo build --release
mkdir -p "$OUT"
if [ "$(cat "$OUT/hist/.generated" 2>/dev/null)" != "$BUYERS 11" ]; then
  rm -rf "$OUT/hist"
  "$BIN" generate --buyers "$BUYERS" --seed 11 --out "$OUT/hist" 2>"$OUT/generate.log"
  echo "$BUYERS 11" >"$OUT/hist/.generated"
fi
rm -rf "$OUT/model" "$OUT/snapshot" "$OUT/judge"
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of options
"$BIN" train --data "$OUT/hist" --as-of 2026-01-01 --test-as-of 2026-04-01 --out "$OUT/model" ${TRAIN_ARGS:-} 2>"$OUT/train.log"
"$BIN" rate --data "$OUT/hist" --model "$OUT/model/model.json" --as-of 2026-06-30 --out "$OUT/snapshot" 2>"$OUT/rate.log"
"$BIN" judge --data "$OUT/hist" --snapshot "$OUT/snapshot" --out "$OUT/judge" >"$OUT/judge.txt"
python3 - "$OUT" "$BUYERS" <<'PY'
import json, sys
out, buyers = sys.argv[1], int(sys.argv[2])
ev = json.load(open(f"{out}/model/evaluation.json"))
# train's own out-of-time test (as of --test-as-of), without the star table
oot = {k: v for k, v in ev["test"].items() if k != "stars"}
judge = json.load(open(f"{out}/judge/star-by-type.json"))
try:
    ch = json.load(open(f"{out}/model/challenger.json"))
except FileNotFoundError:
    ch = None
res = {"buyers": buyers, "seed": 11, "trained_as_of": "2026-01-01", "tested_as_of": "2026-04-01",
       "rated_as_of": "2026-06-30", "out_of_time": oot, "evaluation": ev, "challenger": ch, "judge": judge}
json.dump(res, open(f"{out}/quality.json", "w"), indent=2)
print(json.dumps({"oot": oot, **{k: v for k, v in judge.items() if k != "by_type"}}, indent=1))
PY
cat "$OUT/judge/star-by-type.md"
