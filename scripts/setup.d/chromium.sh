#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/web, driven by Python Playwright
# with executable_path=/usr/bin/chromium; never `playwright install`, which downloads a
# browser build). Idempotent: a no-op when /usr/bin/chromium exists. Needs root (apt-get);
# when it cannot install, it says so, and under CI=true it fails so the tests cannot be
# skipped silently. Override the binary with OWNVAULT_CHROMIUM=/path.
set -euo pipefail
exe="${OWNVAULT_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$exe" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  t0=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends chromium >/tmp/ownvault-chromium-apt.log 2>&1; then
    apt-get update -q >>/tmp/ownvault-chromium-apt.log 2>&1 || true
    apt-get install -y -q --no-install-recommends chromium >>/tmp/ownvault-chromium-apt.log 2>&1 \
      || { tail -20 /tmp/ownvault-chromium-apt.log >&2; }
  fi
  if [ -x "$exe" ]; then
    echo "[chromium] installed in $(( $(date +%s) - t0 )) s: $exe"
    exit 0
  fi
fi
echo "[chromium] $exe not found and cannot be installed here (needs root and apt-get):" \
     "the browser tests (tests/web) will not run. Install it: apt-get install chromium" >&2
if [ "${CI:-}" = "true" ]; then
  exit 1
fi
exit 0
