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
BIN=${FASTREFUND_BIN:-target/release/fastrefund}
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
import json, re, sys, os, platform, datetime
out, buyers = sys.argv[1], int(sys.argv[2])
def rusage(name):
    t = open(f"{out}/{name}.rusage").read()
    g = lambda k: re.search(re.escape(k) + r": (.*)", t).group(1)
    h, m, s = ([0, 0] + [float(x) for x in g("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")])[-3:]
    return {"wall_seconds": round(h * 3600 + m * 60 + s, 2), "user_seconds": float(g("User time (seconds)")),
            "sys_seconds": float(g("System time (seconds)")),
            "max_rss_mib": round(int(g("Maximum resident set size (kbytes)")) / 1024, 1)}
def spans(name):
    res = {}
    for line in open(f"{out}/{name}.log"):
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = re.search(r"INFO (\S+?)(?:\{[^}]*\})?: \S+: close time.busy=([0-9.]+)(ms|µs|s)", line)
        if m:
            v = float(m.group(2)) / {"s": 1, "ms": 1e3, "µs": 1e6}[m.group(3)]
            res[m.group(1)] = round(res.get(m.group(1), 0) + v, 3)
    return res
hist = f"{out}/hist"
res = {"date": datetime.date.today().isoformat(), "machine": f"{platform.node()} ({os.cpu_count()} cores)",
       "buyers": buyers, "seed": 11,
       "history_mib": round(sum(os.path.getsize(f"{hist}/{f}") for f in os.listdir(hist)) / 2**20, 1)}
for name in ["generate", "train", "rate"]:
    res[name] = {**rusage(name), "spans_seconds": spans(name)}
json.dump(res, open(f"{out}/results.json", "w"), indent=2)
print(json.dumps(res, indent=1))
PY
