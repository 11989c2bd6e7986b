#!/usr/bin/env bash
# Batch benchmark (issue 2's speed targets): `generate`, `train --data` and `rate` on a
# history of BUYERS buyers (seed 11), each timed as its own process with GNU time
# (wall, CPU, peak RSS), and the stage times each command logs (tracing spans).
#
# Usage: scripts/bench-batch.sh [BUYERS] [OUTDIR]     (defaults: 1000000 target/bench-batch)
# Writes OUTDIR/results.json. Uses $FASTREFUND_BIN (default target/release/fastrefund).
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${1:-1000000}
OUT=${2:-target/bench-batch}
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/release/fastrefund}
[ -x "$BIN" ] || cargo build --release
command -v /usr/bin/time >/dev/null || { sudo apt-get install -y -qq time >/dev/null 2>&1 || apt-get install -y -qq time; }
mkdir -p "$OUT"
run() { # name, command...
  local name=$1
  shift
  /usr/bin/time -v -o "$OUT/$name.rusage" "$@" 2>"$OUT/$name.log" >/dev/null
}
rm -rf "$OUT/hist" "$OUT/model" "$OUT/snapshot"
run generate "$BIN" generate --buyers "$BUYERS" --seed 11 --out "$OUT/hist"
run train "$BIN" train --data "$OUT/hist" --as-of 2026-01-01 --out "$OUT/model"
run rate "$BIN" rate --data "$OUT/hist" --model "$OUT/model/model.json" --as-of 2026-06-30 --out "$OUT/snapshot"
python3 - "$OUT" "$BUYERS" <<'PY'
import json, sys, os, platform, datetime
out, buyers = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, "scripts")
import benchlib
rusage = lambda name: benchlib.rusage(open(f"{out}/{name}.rusage").read())
spans = lambda name: benchlib.spans(open(f"{out}/{name}.log").read(), keep_fields=False)
hist = f"{out}/hist"
res = {"date": datetime.date.today().isoformat(), "machine": f"{platform.node()} ({os.cpu_count()} cores)",
       "buyers": buyers, "seed": 11,
       "history_mib": round(sum(os.path.getsize(f"{hist}/{f}") for f in os.listdir(hist)) / 2**20, 1)}
for name in ["generate", "train", "rate"]:
    res[name] = {**rusage(name), "spans_seconds": spans(name)}
json.dump(res, open(f"{out}/results.json", "w"), indent=2)
print(json.dumps(res, indent=1))
PY
