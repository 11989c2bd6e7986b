#!/usr/bin/env bash
# Installs what the CI checks need beyond cargo: Debian's Chromium (headless page
# checks), Debian's PostgreSQL (the shared ledger's tests start a throwaway server,
# scripts/pg-test-server.sh) and a Python virtualenv with the pinned packages of scripts/requirements-ci.txt
# (schemathesis for API fuzzing). Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
# A CJK font, so that the zh-CN pages' screenshots show their words (5 MB).
if ! dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
  echo "installing a CJK font (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends fonts-wqy-microhei >/dev/null
fi
if ! ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing postgresql (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
VENV=target/ci-venv
scripts/venv.sh scripts/requirements-ci.txt "$VENV"
