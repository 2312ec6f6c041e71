#!/usr/bin/env bash
# Installs the IPFS JavaScript reference (ipfs-unixfs-importer & co., pinned by
# tests/oracle/package-lock.json) that the tests compare CIDs and CARs against.
# `npm ci` into tests/oracle/node_modules (git-ignored); quick no-op when the lock file
# has not changed since the last install. Needs node >= 20 and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/../../tests/oracle"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "[ipfs-oracle] node/npm not found: install Node.js >= 20 (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
want=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
stamp=node_modules/.ownvault-lock-sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
t0=$(date +%s)
npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1 || { tail -30 npm-ci.log >&2; exit 1; }
rm -f npm-ci.log
# self-test against Kubo's own vectors (test/sharness/t0040-add-and-cat.sh)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
printf '' > "$T/empty"; echo "Hello Mars!" > "$T/mars.txt"
got=$(node ipfs-oracle.mjs cid "$T/empty")
[ "$got" = bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku ] || { echo "[ipfs-oracle] self-test failed: $got" >&2; exit 1; }
got=$(node ipfs-oracle.mjs cid "$T/mars.txt")
[ "$got" = bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4 ] || { echo "[ipfs-oracle] self-test failed: $got" >&2; exit 1; }
echo "$want" > "$stamp"
echo "[ipfs-oracle] installed in $(( $(date +%s) - t0 )) s: node tests/oracle/ipfs-oracle.mjs"
