#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis):
# valid and invalid requests to every operation; no input may make the server answer
# 5xx or answer anything its document does not describe. Bounded (examples per
# operation, fixed seed) so that CI stays quick and reproducible. (The `coverage`
# phase is left out: schemathesis 4.32.5 crashes in it with an internal KeyError on
# some of our operations, which is its bug, not a finding. The check that every
# schema-valid request is accepted is left out too: the API refuses on purpose what a
# schema cannot say is implausible, naming the field with 422 — a requested_at in the
# future, a delivered_at after requested_at, a year outside 2000-2999.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/serve-bg.sh
EXAMPLES=${FUZZ_EXAMPLES:-60}
target/ci-venv/bin/schemathesis run "$BASE/openapi.json" \
  -H "Authorization: Bearer $FASTREFUND_API_TOKEN" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$EXAMPLES" --seed 1 --workers 2 \
  --phases examples,fuzzing,stateful \
  --request-timeout 10 \
  --report junit --report-dir target/schemathesis \
  --no-color
grep -q "panicked" "$WORK/serve.log" && { echo "the server panicked:"; grep -A3 panicked "$WORK/serve.log"; exit 1; }
echo "fuzzing found nothing"
