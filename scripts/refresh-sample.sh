#!/usr/bin/env bash
# Regenerates the shipped defaults from scratch: the 2,000-buyer sample history in
# data/sample, the scorecard trained on it in models/<version>/ (made the champion),
# and its ratings snapshot in data/snapshot (which `serve` embeds as its default).
# Run it after changing the generator, the features or the trainer, then rebuild.
#
# With --snapshot-only, only data/snapshot is written again: the sample rated by the
# champion, for a change to what a snapshot carries (such as the points_<feature>
# columns) that must not change a rating. The history and the model stay as they are;
# the new snapshot must rate every buyer alike (star counts, score and feature
# distributions, model, data fingerprint: otherwise it stops and writes nothing), and
# it keeps the drift the snapshot recorded when its model was published, so only
# ratings.parquet and the manifest's ratings_sha256 and created_at change.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/debug/fastrefund}
[ -x "$BIN" ] || cargo build -q -p fastrefund

if [ "${1:-}" = --snapshot-only ]; then
  version=$(cat models/CHAMPION)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # A fresh folder: no snapshot to measure drift against, none recorded.
  "$BIN" rate --data data/sample --model "models/$version/model.json" --as-of 2026-06-30 --out "$tmp/snap" --shards 1
  python3 - data/snapshot "$tmp/snap" <<'EOF'
import json, os, shutil, sys

old_dir, new_dir = sys.argv[1], sys.argv[2]
read = lambda d, f: open(os.path.join(d, f), "rb").read()
old_text = read(old_dir, "manifest.json").decode()
old, new = json.loads(old_text), json.loads(read(new_dir, "manifest.json"))
changes = {"ratings_sha256", "created_at"}
for k in sorted(set(old) | set(new)):
    if k in changes or k == "drift":
        continue
    if old.get(k) != new.get(k):
        sys.exit(f"refresh-sample: {k} changed ({old.get(k)!r} -> {new.get(k)!r}): the ratings moved; refresh the whole sample instead")
if read(old_dir, "model.json") != read(new_dir, "model.json"):
    sys.exit("refresh-sample: the champion is not the model of data/snapshot; refresh the whole sample instead")
# The old manifest's text with the two fields that change, so every other byte (the
# drift recorded when the model was published among them) stays.
lines = old_text.splitlines(keepends=True)
for k in changes:
    hits = [i for i, l in enumerate(lines) if l.startswith(f'  "{k}": ')]
    if len(hits) != 1:
        sys.exit(f"refresh-sample: cannot find {k} in {old_dir}/manifest.json")
    lines[hits[0]] = f'  "{k}": {json.dumps(new[k])},\n'
text = "".join(lines)
if {k: v for k, v in json.loads(text).items()} != {**old, **{k: new[k] for k in changes}}:
    sys.exit("refresh-sample: the manifest did not come out as meant")
shutil.copyfile(os.path.join(new_dir, "ratings.parquet"), os.path.join(old_dir, "ratings.parquet"))
open(os.path.join(old_dir, "manifest.json"), "w").write(text)
print(f"data/snapshot: ratings.parquet written again ({new['rows']} buyers, star counts {new['star_counts']} as before)")
EOF
  exit 0
fi

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
