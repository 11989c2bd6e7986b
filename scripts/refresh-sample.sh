#!/usr/bin/env bash
# Regenerates the shipped defaults from scratch: the 2,000-buyer sample history in
# data/sample, the scorecard trained on it in models/<version>/ (made the champion),
# and its ratings snapshot in data/snapshot (which `serve` embeds as its default).
# Run it after changing the generator, the features or the trainer, then rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/debug/fastrefund}
[ -x "$BIN" ] || cargo build -q
rm -rf data/sample
"$BIN" generate --buyers 2000 --seed 7 --out data/sample
tmp=$(mktemp -d)
"$BIN" train --data data/sample --as-of 2026-01-01 --out "$tmp" >/dev/null
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_version"])' "$tmp/model.json")
rm -rf "models/$version"
mkdir -p models
chmod 755 "$tmp"
mv "$tmp" "models/$version"
echo "$version" > models/CHAMPION
# --force: a new champion is expected to move the scores of the one it replaces.
"$BIN" rate --data data/sample --model "models/$version/model.json" --as-of 2026-06-30 --out data/snapshot --force
echo "champion: $version"
