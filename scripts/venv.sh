#!/usr/bin/env bash
# Makes VENV a virtualenv with exactly the pinned packages of REQUIREMENTS; skipped when
# VENV already holds that same requirements file (a copy is kept in VENV/.requirements).
# Usage: scripts/venv.sh REQUIREMENTS VENV     (run from the project's root)
set -euo pipefail
REQ=$1
VENV=$2
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/.requirements"; then
  echo "installing the pinned Python packages of $REQ into $VENV"
  t=$(date +%s)
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/.requirements"
  echo "  installed in $(($(date +%s) - t))s"
fi
