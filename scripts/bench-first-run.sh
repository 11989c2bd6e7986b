#!/usr/bin/env bash
# A newcomer's first run: from a fresh clone with an empty target directory, the README's
# main-job command (`cargo run --release -p fastrefund-service --`) until the
# service answers its first eligibility request. Prints the seconds to the build's end
# and to the first answer, and the number of crates compiled.
#
# Usage: scripts/bench-first-run.sh [OUT.json]   (default target/bench-first-run.json)
# The crates' sources come from cargo's download cache when this machine already has
# them; with FRESH_CARGO_HOME=1 they are downloaded into an empty CARGO_HOME, as on a
# new machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
OUT=${1:-target/bench-first-run.json}
mkdir -p "$(dirname "$OUT")"
OUT=$(realpath "$OUT")
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
PID=
git clone -q . "$WORK/fastrefund"
if [ "${FRESH_CARGO_HOME:-}" = 1 ]; then
  export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME="$WORK/cargo-home"
  mkdir -p "$CARGO_HOME"
fi
cd "$WORK/fastrefund"
PORT=$(free_port)
export FASTREFUND_API_TOKEN=first-run-api-token FASTREFUND_ADMIN_TOKEN=first-run-admin-token
start=$(date +%s.%N)
# The README's command, with a free port and a ledger in the scratch folder.
cargo run --release -p fastrefund-service -- --addr "127.0.0.1:$PORT" \
  --ledger "$WORK/ledger.sqlite" >"$WORK/run.log" 2>&1 &
PID=$!
built=
answered=
while kill -0 $PID 2>/dev/null; do
  if [ -z "$built" ] && grep -q "Running \`" "$WORK/run.log"; then
    built=$(date +%s.%N)
  fi
  if [ -n "$built" ] && curl -sf -H "Authorization: Bearer $FASTREFUND_API_TOKEN" \
    -H 'content-type: application/json' "http://127.0.0.1:$PORT/v1/eligibility" -d '{
      "return_id": 1, "buyer_id": 100001, "order_id": 5, "merchant_id": 1, "category": "shoes",
      "amount": "59.90", "reason": "no_reason",
      "delivered_at": "2026-06-30T02:00:00Z", "requested_at": "2026-07-01T02:00:00Z"}' \
    >"$WORK/answer.json" 2>/dev/null; then
    answered=$(date +%s.%N)
    break
  fi
  sleep 0.2
done
[ -n "$answered" ] || { tail -30 "$WORK/run.log"; echo "no answer"; exit 1; }
crates=$(grep -c "Compiling " "$WORK/run.log" || true)
polars=$(grep -c "Compiling polars" "$WORK/run.log" || true)
python3 - "$OUT" "$start" "$built" "$answered" "$crates" "$polars" "$(nproc)" "$WORK/answer.json" <<'EOF'
import json, sys, datetime
out, start, built, answered, crates, polars, cores, answer = sys.argv[1:]
r = {
    "date": datetime.date.today().isoformat(),
    "cores": int(cores),
    "command": "cargo run --release -p fastrefund-service --",
    "fresh_cargo_home": __import__("os").environ.get("FRESH_CARGO_HOME") == "1",
    "build_seconds": round(float(built) - float(start), 1),
    "first_answer_seconds": round(float(answered) - float(start), 1),
    "crates_compiled": int(crates),
    "polars_crates_compiled": int(polars),
    "first_answer": json.load(open(answer)),
}
json.dump(r, open(out, "w"), indent=2)
print(json.dumps({k: v for k, v in r.items() if k != "first_answer"}, indent=2))
EOF
