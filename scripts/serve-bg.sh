# Sourced by the check scripts: starts `fastrefund serve` in the background on a free
# port with test tokens and a fresh ledger; sets PORT, BASE, SERVER_PID, WORK and stops
# the server on exit. Uses $BIN (default target/debug/fastrefund).
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/debug/fastrefund}
[ -x "$BIN" ] || cargo build -q
WORK=$(mktemp -d)
# shellcheck source=bench-lib.sh
source scripts/bench-lib.sh
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
export FASTREFUND_API_TOKEN=check-api-token FASTREFUND_ADMIN_TOKEN=check-admin-token FASTREFUND_REVIEWER_TOKEN=check-reviewer-token
"$BIN" serve --ledger "$WORK/ledger.sqlite" --addr "127.0.0.1:$PORT" "$@" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  curl -sf "$BASE/readyz" >/dev/null 2>&1 && break
  kill -0 $SERVER_PID 2>/dev/null || { cat "$WORK/serve.log"; echo "serve exited"; exit 1; }
  sleep 0.2
done
curl -sf "$BASE/readyz" >/dev/null || { cat "$WORK/serve.log"; echo "serve not ready"; exit 1; }
