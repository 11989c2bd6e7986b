#!/usr/bin/env bash
# Trains a model on the shipped sample and opens its evaluation report in a real
# headless Chromium: the HTML must render the metrics, the star table and every
# figure (as inline SVG), and leave a screenshot in target/report/ to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/debug/fastrefund}
[ -x "$BIN" ] || cargo build -q
OUT=target/report
rm -rf "$OUT"
RUST_LOG=warn "$BIN" train --data data/sample --as-of 2026-01-01 --out "$OUT/model" >/dev/null
for f in report.html evaluation.json challenger.json stars.csv calibration.csv bins.csv information_value.csv roc.csv \
  figures/roc.svg figures/ks.svg figures/calibration.svg figures/stars.svg figures/score_distribution.svg figures/information_value.svg; do
  [ -s "$OUT/model/$f" ] || { echo "the report lacks $f"; exit 1; }
done
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$PROFILE")
chromium "${flags[@]}" --dump-dom "file://$PWD/$OUT/model/report.html" 2>/dev/null >"$OUT/dom.html"
for want in "Discrimination and calibration" "challenger" "Stars (test split)" "Information value per feature" "<svg"; do
  grep -q "$want" "$OUT/dom.html" || { echo "the rendered report lacks \"$want\""; exit 1; }
done
svgs=$(grep -o "<svg" "$OUT/dom.html" | wc -l)
[ "$svgs" -ge 8 ] || { echo "only $svgs figures rendered"; exit 1; }
chromium "${flags[@]}" --window-size=1100,2400 --screenshot="$OUT/report.png" "file://$PWD/$OUT/model/report.html" >/dev/null 2>&1
[ -s "$OUT/report.png" ] || { echo "no screenshot"; exit 1; }
echo "report rendered in Chromium with $svgs figures ($OUT/report.png)"
