#!/usr/bin/env bash
# `make e2e`: a Chromium for the browser tests. Debian's chromium where it is installed, or where apt-get works as root
# (these machines, CI); elsewhere Playwright's own Chromium (`playwright install chromium`, a download from
# Playwright's servers). The tests use whichever is there: MTST_CHROMIUM, else chromium on PATH, else Playwright's.
#   usage: tools/need_chromium.sh [PLAYWRIGHT]     (default: .venv/bin/playwright)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
playwright=${1:-$root/.venv/bin/playwright}
if [ -n "${MTST_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }
  exit 0
fi
echo "chromium: no Debian chromium here and no apt-get as root; installing Playwright's own Chromium ($playwright install chromium)"
if ! "$playwright" install chromium; then
  cat >&2 <<MSG
chromium: could not get a Chromium for the browser tests. Either install your distribution's chromium (so that
\`chromium\` is on PATH), point MTST_CHROMIUM at a Chromium or Chrome binary, or let Playwright download its own:
  $playwright install chromium
MSG
  exit 1
fi
