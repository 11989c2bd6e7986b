#!/usr/bin/env bash
# Executes notebooks/fastrefund-tour.ipynb headless and fails if any cell fails (the
# notebook asserts that its Python reading of model.json gives the Rust scores).
# Installs the pinned packages of scripts/requirements-notebook.txt into a virtualenv
# (target/notebook-venv, skipped when the requirements are unchanged), writes the buyer
# features with the binary ($FASTREFUND_BIN, default target/debug/fastrefund) and the
# executed notebook into target/notebook/.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
VENV=target/notebook-venv
scripts/venv.sh scripts/requirements-notebook.txt "$VENV"
BIN=${FASTREFUND_BIN:-${CARGO_TARGET_DIR:-target}/debug/fastrefund}
[ -x "$BIN" ] || cargo build -q
OUT=target/notebook
mkdir -p "$OUT"

# Absolute paths: the kernel runs in notebooks/.
FASTREFUND_BIN=$(realpath "$BIN")
FASTREFUND_SNAPSHOT=$(realpath "${FASTREFUND_SNAPSHOT:-data/snapshot}")
FASTREFUND_DATA=$(realpath "${FASTREFUND_DATA:-data/sample}")
FASTREFUND_FEATURES=$(realpath "$OUT/features.parquet")
export FASTREFUND_BIN FASTREFUND_SNAPSHOT FASTREFUND_DATA FASTREFUND_FEATURES

as_of=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["as_of"])' \
  "$FASTREFUND_SNAPSHOT/manifest.json")
if ! "$FASTREFUND_BIN" features --data "$FASTREFUND_DATA" --as-of "$as_of" --model "$FASTREFUND_SNAPSHOT/model.json" \
  --out "$FASTREFUND_FEATURES" >"$OUT/features.log" 2>&1; then
  cat "$OUT/features.log" >&2
  echo "fastrefund features failed" >&2
  exit 1
fi

# Kernel sockets, connection files and caches stay out of $HOME.
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
export JUPYTER_RUNTIME_DIR="$run" IPYTHONDIR="$run/ipython" MPLCONFIGDIR="$PWD/$VENV/mplconfig"
timeout 300 "$VENV/bin/python" - notebooks/fastrefund-tour.ipynb "$OUT" "$run" <<'EOF'
import sys
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

src, out_dir, run = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
out = out_dir / src.name
nb = nbformat.read(src, as_version=4)
km = KernelManager(kernel_name="python3", transport="ipc", ip=f"{run}/kernel")
client = NotebookClient(nb, km=km, timeout=120, startup_timeout=60, record_timing=False, resources={"metadata": {"path": str(src.parent)}})
try:
    client.execute()
finally:
    if km.has_kernel:  # nbclient leaves a kernel manager it was given running
        km.shutdown_kernel(now=True)
    nbformat.write(nb, out)  # also when a cell failed, to look at
EOF
echo "notebook OK: fastrefund-tour.ipynb ran top to bottom in $(( $(date +%s) - start ))s (executed copy: $OUT/fastrefund-tour.ipynb)"
