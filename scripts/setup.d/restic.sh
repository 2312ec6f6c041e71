#!/usr/bin/env bash
# Installs Debian's restic for the retention test that compares `ownvault`'s retention with
# `restic forget --dry-run --json` on the same list of times (tests/core/test_retention.py).
# Idempotent: a no-op when restic is on PATH. Needs root (apt-get); under CI=true a missing
# restic fails the setup so the comparison cannot be skipped silently.
set -euo pipefail
if command -v restic >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends restic >/tmp/ownvault-restic-apt.log 2>&1; then
    apt-get update -q >>/tmp/ownvault-restic-apt.log 2>&1 || true
    apt-get install -y -q --no-install-recommends restic >>/tmp/ownvault-restic-apt.log 2>&1 \
      || tail -20 /tmp/ownvault-restic-apt.log >&2
  fi
  rm -f /tmp/ownvault-restic-apt.log
  command -v restic >/dev/null && exit 0
fi
echo "[restic] not found and cannot be installed here (apt-get install restic):" \
     "the restic comparison in tests/core/test_retention.py will not run" >&2
if [ "${CI:-}" = "true" ]; then
  exit 1
fi
exit 0
