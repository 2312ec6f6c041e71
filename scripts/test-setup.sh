#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages (run by `make test`).
# Each part is idempotent and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
for part in scripts/setup.d/*.sh; do
  [ -e "$part" ] || continue
  bash "$part"
done
