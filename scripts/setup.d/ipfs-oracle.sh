#!/usr/bin/env bash
# Installs the IPFS JavaScript reference (ipfs-unixfs-importer & co., pinned by
# tests/oracle/package-lock.json) that the tests compare CIDs and CARs against.
# `npm ci` into tests/oracle/node_modules (git-ignored); quick no-op when the lock file
# has not changed since the last install. Needs node >= 20 and the npm registry.
set -euo pipefail
. "$(dirname "$0")/../lib/npm-tree.sh"
cd "$(dirname "$0")/../../tests/oracle"
npm_tree_current "[ipfs-oracle]" && exit 0
t0=$(date +%s)
npm_tree_install
# self-test against Kubo's own vectors (test/sharness/t0040-add-and-cat.sh)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
printf '' > "$T/empty"; echo "Hello Mars!" > "$T/mars.txt"
got=$(node ipfs-oracle.mjs cid "$T/empty")
[ "$got" = bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku ] || { echo "[ipfs-oracle] self-test failed: $got" >&2; exit 1; }
got=$(node ipfs-oracle.mjs cid "$T/mars.txt")
[ "$got" = bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4 ] || { echo "[ipfs-oracle] self-test failed: $got" >&2; exit 1; }
npm_tree_stamp
echo "[ipfs-oracle] installed in $(( $(date +%s) - t0 )) s: node tests/oracle/ipfs-oracle.mjs"
